#!/usr/bin/python3
"""Compare two sysfs trees over the objects a recording captured.

Usage: compare.py --recording FILE --real DIR --mount DIR [--allowed FILE]
                  [--context NAME]

The objects are every directory, file and link in the recording's
[recorded] section (docs/recording.md), whether the mount serves it from
the model or from the recording. For each: the type, the mode, a link's
target, a file's value (read on both sides; an errno counts as the value),
and for a directory the set of names in it. Differences are failures
unless a line of the allowed-differences file matches:

    KIND  PATH-GLOB  CONTEXT  -- REASON

KIND is one of missing (in the real tree, not the mount), extra (in the
mount only), type, mode, target, value, volatile (a value that changes on
its own: not compared); the glob is fnmatch's over the path relative to
the root; CONTEXT is a glob over --context ("host", "roundtrip:default",
"*"). Every line needs a reason. Prints one line per unexplained
difference and "compare: N checked, N allowed, N failed".
"""

import argparse
import fnmatch
import os
import stat
import sys
import tomllib

MAX = 1 << 20


def load_allowed(path):
    rules = []
    if not path:
        return rules
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if " -- " not in line:
                sys.exit(f"{path}:{n}: no ' -- REASON'")
            spec, reason = line.split(" -- ", 1)
            parts = spec.split()
            if len(parts) != 3 or not reason.strip():
                sys.exit(f"{path}:{n}: expected KIND PATH-GLOB CONTEXT -- REASON")
            kind, glob, ctx = parts
            if kind not in ("missing", "extra", "type", "mode", "target", "value", "volatile", "tool"):
                sys.exit(f"{path}:{n}: unknown kind {kind}")
            rules.append((kind, glob, ctx, n))
    return rules


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read(MAX)
    except OSError as e:
        return f"<{os.strerror(e.errno)}>".encode()


def kind_of(path):
    try:
        st = os.lstat(path)
    except OSError:
        return None, None
    if stat.S_ISLNK(st.st_mode):
        return "link", st
    if stat.S_ISDIR(st.st_mode):
        return "dir", st
    return "file", st


class Comparer:
    def __init__(self, real, mount, rules, context):
        self.real, self.mount, self.rules, self.context = real, mount, rules, context
        self.checked = self.allowed = self.failed = 0
        self.used = set()

    def rule(self, kind, path):
        for k, glob, ctx, n in self.rules:
            if k == kind and fnmatch.fnmatchcase(path, glob) and fnmatch.fnmatchcase(self.context, ctx):
                self.used.add(n)
                return True
        return False

    def check(self, ok, kind, path, detail):
        self.checked += 1
        if ok:
            return
        if self.rule(kind, path):
            self.allowed += 1
            return
        self.failed += 1
        print(f"DIFF {kind} {path}: {detail}")

    def compare(self, rel, recorded_kind, skip):
        a, b = os.path.join(self.real, rel), os.path.join(self.mount, rel)
        ka, sa = kind_of(a)
        kb, sb = kind_of(b)
        if ka is None:
            # Gone from the real tree since it was recorded (hotplug): not
            # an object of this machine any more.
            return
        if kb is None:
            self.check(False, "missing", rel, "not in the mount")
            return
        self.check(ka == kb, "type", rel, f"{ka} in the real tree, {kb} in the mount")
        if ka != kb:
            return
        if ka != "link":
            self.check(sa.st_mode & 0o7777 == sb.st_mode & 0o7777, "mode", rel,
                       f"{sa.st_mode & 0o7777:o} real, {sb.st_mode & 0o7777:o} mount")
        if ka == "link":
            ta, tb = os.readlink(a), os.readlink(b)
            self.check(ta == tb, "target", rel, f"{ta} real, {tb} mount")
        elif ka == "dir":
            na = set(os.listdir(a))
            nb = set(os.listdir(b))
            for n in sorted(na - nb):
                p = f"{rel}/{n}"
                if p not in skip:
                    self.check(False, "missing", p, "not in the mount")
            for n in sorted(nb - na):
                self.check(False, "extra", f"{rel}/{n}", "only in the mount")
        else:
            if self.rule("volatile", rel):
                return
            if not sa.st_mode & 0o444:
                return  # no read op on either side (modes compared above)
            va, vb = read(a), read(b)
            self.check(va == vb, "value", rel, f"{va[:120]!r} real, {vb[:120]!r} mount")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recording", required=True)
    ap.add_argument("--real", required=True)
    ap.add_argument("--mount", required=True)
    ap.add_argument("--allowed")
    ap.add_argument("--context", default="host")
    args = ap.parse_args()
    with open(args.recording, "rb") as f:
        rec = tomllib.load(f)
    header = open(args.recording, encoding="utf-8").read().split("\n[", 1)[0]
    # What the recorder left out (listed, never silent) is not compared.
    skip = set()
    for line in header.splitlines():
        if line.startswith("# left out: "):
            skip.add(line[len("# left out: "):].split(": ", 1)[0])
    r = rec.get("recorded", {})
    c = Comparer(args.real, args.mount, load_allowed(args.allowed), args.context)
    for kind in ("dir", "file", "link"):
        for e in r.get(kind, []):
            c.compare(e["path"], kind, skip)
    print(f"compare ({args.context}): {c.checked} checked, {c.allowed} allowed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
