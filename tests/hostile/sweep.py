#!/usr/bin/env python3
"""Hostile-input sweep (docs/testing.md, `make test-hostile`, `make test-hostile-full`).

For every machine it is given (the built-in default, the test-device
machine, its `-o state` replay form, the example machines/*.toml), the
sweep mounts it, discovers every writable regular file under the mount
(the control plane included: the sweep runs as root), and writes each input
of the hostile corpus to each file. For every (file, input) it records the
outcome (a count or an errno name), checks the daemon is alive, checks the
errno against expected.py (the kernel's, per file), and proves that a
refused write changed nothing: every readable file of the machine (and the
tree itself) reads back the same.

Nothing here knows a device: files are discovered, so devices that land
later are covered automatically; only expected.py names files.

How "a refused write changed nothing" stays cheap (checkpoint batching)
------------------------------------------------------------------------
Reading the whole machine after every write is what made the sweep slow.
Instead, refused writes are batched: a batch starts at a snapshot (the
baseline, taken only when a refused write needs one) and is closed by the
next snapshot, taken before a write that may be accepted and at the end of
the machine. Each file's inputs predicted refused are tried first, so a
file costs at most two snapshots (one closing its refused run, one after its
accepted run as the next baseline), and files that refuse everything share
one batch. If the closing snapshot equals the baseline, every refused write
of the batch changed nothing. If it differs, the batch is localized: a fresh
mount replays every write made on this mount before the batch, must reach
the batch's baseline exactly, and then replays the batch with a snapshot
after each write, so the report names the exact (file, input).

Two learning passes (MachineSweep._learn) first make the sweep's writes on
mounts of their own, with no snapshot, to learn which are accepted; files
go in chunks (plan()), each chunk's refused writes first, so the checking
pass needs about two snapshots per chunk. Without them (the self-check's
second run), each write is predicted from expected.py, else from what the
same input did to an earlier file of the same kind, else "unknown".

Before each write the sweep predicts whether it will be accepted (from the
learning passes, else as above). A write that may be accepted closes the open
batch first, so its "before" state is a snapshot. When a write predicted
refused turns out accepted (or kills the daemon) while a batch is open, the
state the batch should be compared with is gone: the batch is verified by
the same fresh-mount replay. So every refused write is checked, whatever
the predictions; good predictions only make it fast.

Quick form (--quick, CI): the corpus subset below, one representative pair
(first and last) per *kind* of file (paths equal once digit runs are
replaced by N: cpu1/online .. cpu7/online, node0 .. node1, tx-0 .. tx-3,
eth0 .. eth1), and of the example machines only the files whose writable
(kind, initial content) the machines already swept lack (decided
automatically; a machine that brings none is skipped). The full form
sweeps every file of every machine.

Prints one row per machine and a total; exits 1 on any crash, any state
change on a refused write, or any errno that contradicts expected.py.

usage: sweep.py [--quick] [--daemon BIN] [--test-daemon BIN] [--only NAME] [-v]
"""
import argparse
import errno
import fnmatch
import glob
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected as E  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


# The hostile corpus: (label, bytes, offset).
def corpus(quick):
    junk = bytes(range(256)) * 4
    c = [
        ("empty", b"", 0),
        ("newline", b"\n", 0),
        ("junk", b"junk", 0),
        ("junk-nl", b"hello world\n", 0),
        ("lead-space", b" 1\n", 0),
        ("trail-space", b"1 \n", 0),
        ("spaces", b"   \n", 0),
        ("0x", b"0x", 0),
        ("0x-nl", b"0x\n", 0),
        ("minus1", b"-1\n", 0),
        ("2^64", b"18446744073709551616\n", 0),
        ("2^64+1", b"18446744073709551617\n", 0),
        ("10^30", b"1" + b"0" * 30 + b"\n", 0),
        ("nul-middle", b"1\x002\n", 0),
        ("nul-only", b"\x00", 0),
        # a page whose C string is empty: limits on the count vs strlen()
        ("nul-page", b"\x00" + b"1" * 4095, 0),
        ("4095", b"1" * 4095, 0),
        ("4096", b"1" * 4096, 0),
        ("4097", b"1" * 4097, 0),
        ("1MiB", b"7" * (1 << 20), 0),
        ("binary", junk[:512], 0),
        ("utf8-invalid", b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\xff\xfe\n", 0),
        ("off-1", b"1\n", 1),
        ("off-4095", b"1\n", 4095),
        ("off-4096", b"1\n", 4096),
        ("off-huge", b"1\n", 1 << 62),
    ]
    if quick:
        keep = {"empty", "newline", "junk", "lead-space", "0x", "minus1", "2^64",
                "10^30", "nul-middle", "nul-page", "4097", "1MiB", "binary", "utf8-invalid", "off-4095"}
        c = [x for x in c if x[0] in keep]
    return c


def kind_of(rel):
    """Files whose paths differ only in numbers are one kind."""
    return re.sub(r"\d+", "N", rel)


def errname(e):
    # EOPNOTSUPP and ENOTSUP are one number on Linux; the kernel's name is
    # EOPNOTSUPP.
    if e == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"
    return errno.errorcode.get(e, str(e))


# --- mounts ------------------------------------------------------------------

class Mount:
    def __init__(self, daemon, opts):
        self.daemon, self.opts = daemon, opts
        self.dir = tempfile.mkdtemp(prefix="vsysfs-hostile.")
        self.pid = None

    def start(self):
        env = dict(os.environ, VSYSFS=self.daemon)
        # The daemon keeps the mount script's stderr: give it a file, not a
        # pipe we would wait on.
        with tempfile.TemporaryFile() as err:
            out = subprocess.run([os.path.join(ROOT, "mount-scripts/vsysfs-mount"), self.dir, "--"]
                                 + self.opts, env=env, stdout=subprocess.PIPE, stderr=err,
                                 text=True, timeout=60)
            if out.returncode != 0:
                err.seek(0)
                raise RuntimeError("mount failed: " + err.read().decode(errors="replace").strip())
        self.pid = int(out.stdout.strip().splitlines()[-1])

    def alive(self):
        try:
            os.kill(self.pid, 0)
            os.stat(self.dir)
            return True
        except OSError:
            return False

    def stop(self):
        subprocess.run([os.path.join(ROOT, "mount-scripts/vsysfs-umount"), "--timeout", "5",
                        self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.pid:
            try:
                os.kill(self.pid, 9)
            except OSError:
                pass
        subprocess.run(["fusermount3", "-uz", self.dir], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        self.pid = None

    def restart(self):
        self.stop()
        self.start()

    def close(self):
        self.stop()
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


# --- reading the machine -------------------------------------------------------

def walk(mnt):
    """(writable, readable, tree) of regular files, relative paths, symlinks
    not followed. tree: every node's (path, type, mode), so that a refused
    write that adds, removes or chmods anything shows."""
    writable, readable, tree = [], [], []
    stack = [""]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(os.path.join(mnt, d) if d else mnt)
        except OSError as e:
            tree.append((d, "<scandir %s>" % errname(e.errno), 0))
            continue
        with it:
            for ent in it:
                rel = d + "/" + ent.name if d else ent.name
                try:
                    st = ent.stat(follow_symlinks=False)
                except OSError as e:
                    tree.append((rel, "<lstat %s>" % errname(e.errno), 0))
                    continue
                mode = st.st_mode
                tree.append((rel, stat.S_IFMT(mode), stat.S_IMODE(mode)))
                if stat.S_ISDIR(mode):
                    stack.append(rel)
                elif stat.S_ISREG(mode):
                    if mode & 0o222:
                        writable.append(rel)
                    if mode & 0o444:
                        readable.append(rel)
    tree.sort()
    return sorted(writable), sorted(readable), tuple(tree)


_READ_CHUNK = 1 << 16
_MAX_READ = 1 << 20


def read_file(path):
    """Content as bytes, or "<open E>"/"<read E>". One open/read/close for
    anything shorter than 64 KiB: a short read from a sysfs file is its end."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        return "<open %s>" % errname(e.errno)
    try:
        b = os.read(fd, _READ_CHUNK)
        if len(b) < _READ_CHUNK:
            return b
        chunks, n = [b], len(b)
        while n <= _MAX_READ:
            b = os.read(fd, _READ_CHUNK)
            if not b:
                break
            chunks.append(b)
            n += len(b)
        return b"".join(chunks)
    except OSError as e:
        return "<read %s>" % errname(e.errno)
    finally:
        os.close(fd)


_excluded_cache = {}


def excluded(rel):
    r = _excluded_cache.get(rel)
    if r is None:
        r = any(fnmatch.fnmatchcase(rel, pat) for pat in E.EXCLUDED_FROM_STATE)
        _excluded_cache[rel] = r
    return r


class Snapshot:
    """The machine as a reader sees it: the tree and every readable file."""
    count = 0  # how many were taken (for the report)

    def __init__(self, mnt):
        Snapshot.count += 1
        _, readable, tree = walk(mnt)
        self.state = {"<tree>": tree}
        for rel in readable:
            if not excluded(rel):
                self.state[rel] = read_file(os.path.join(mnt, rel))

    def diff(self, other):
        a, b = self.state, other.state
        return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def do_write(path, data, off):
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        return "open:" + errname(e.errno)
    try:
        n = os.pwrite(fd, data, off) if off else os.write(fd, data)
        return "OK:%d" % n
    except OSError as e:
        return errname(e.errno)
    finally:
        os.close(fd)


def outcome(res):
    """"OK" for an accepted write (any count), else the errno name."""
    return "OK" if res.startswith("OK") else res


# --- one machine ---------------------------------------------------------------

class MachineSweep:
    """Sweeps one machine. Invariant while sweeping: if self.base is set, it
    is the snapshot taken after self.log[:self.base_len], and every write
    after that, self.log[self.base_len:], is a refused write in self.batch."""

    def __init__(self, name, daemon, opts, inputs, verbose, state=None):
        self.name, self.daemon, self.opts = name, daemon, opts
        self.inputs, self.verbose, self.state = inputs, verbose, state
        self.stats = {"files": 0, "all_files": 0, "tried": 0, "accepted": 0, "refused": {},
                      "crashes": 0, "changes": 0, "mismatch": 0, "quirks": 0, "remounts": 0,
                      "replays": 0, "snapshots": 0, "replay": "-", "seconds": 0.0}
        self.problems = []
        self.learned = {}   # (kind, label) -> outcome seen on an earlier file of the kind
        self.m = Mount(daemon, opts)
        self.log = []       # (rel, label, data, off, res) written on the current mount
        # (rel, label) -> outcome of the learning pass (see run()); {} = off
        self.probed = {}
        self.learn = True
        self.sequence = []  # the learning pass's writes, in order
        self.chunk = 16     # files per chunk (plan())
        self.base, self.base_len, self.batch = None, 0, []

    # -- bookkeeping

    def write_raw(self, mnt, rel, data, off):
        """Every write of the sweep, replays included (the self-check
        overrides it to plant faults)."""
        return do_write(os.path.join(mnt, rel), data, off)

    def _problem(self, kind, text):
        self.problems.append("%s: %s" % (kind, text))

    def _fresh_mount_state(self):
        self.log, self.base, self.base_len, self.batch = [], None, 0, []

    def _restart(self):
        self.m.restart()
        self.stats["remounts"] += 1
        self._fresh_mount_state()

    def _replay_opts(self, tmpdir):
        """The machine's options for a replay mount: a -o state machine
        replays into a fresh state file, not the one under test."""
        if not self.state:
            return list(self.opts)
        return [o.replace(self.state, os.path.join(tmpdir, "state")) for o in self.opts]

    # -- checkpoints

    def _ensure_base(self):
        if self.base is None:
            assert not self.batch
            self.base, self.base_len = Snapshot(self.m.dir), len(self.log)

    def _close_batch(self):
        """Snapshot; the open batch's refused writes must not have changed it."""
        if not self.batch:
            return
        after = Snapshot(self.m.dir)
        changed = self.base.diff(after)
        if changed:
            if len(self.batch) == 1:
                self._judge_change(self.batch[0], changed)
            else:
                self._replay_batch(known_change=changed)
        self.base, self.base_len, self.batch = after, len(self.log), []

    def _judge_change(self, entry, changed):
        """A refused write (entry = index into self.log) changed `changed`."""
        rel, label, _, _, res = self.log[entry]
        allowed = E.allowed_change(rel, outcome(res), changed)
        if allowed:
            self.stats["quirks"] += 1
            if self.verbose:
                print("  quirk: %s <- %s (%s) changed %s: %s"
                      % (rel, label, res, ", ".join(changed[:5]), allowed))
            return
        self.stats["changes"] += 1
        self._problem("STATE", "refused %s <- %s (%s) changed %s"
                      % (rel, label, res, ", ".join(changed[:5])))

    def _replay_batch(self, known_change=None):
        """Verify the open batch on a fresh mount: replay everything written
        before it, check that reproduces the baseline, then replay the batch
        with a snapshot after each write."""
        self.stats["replays"] += 1
        if self.verbose:
            print("  replay: verifying %d refused writes on a fresh mount (%s)"
                  % (len(self.batch), "a change to localize" if known_change
                     else "the state after them is gone"))
        tmpdir = tempfile.mkdtemp(prefix="vsysfs-hostile-replay.")
        r = Mount(self.daemon, self._replay_opts(tmpdir))
        batch_desc = ", ".join("%s <- %s" % (self.log[i][0], self.log[i][1]) for i in self.batch[:6])
        try:
            r.start()
            for rel, _, data, off, _ in self.log[:self.base_len]:
                self.write_raw(r.dir, rel, data, off)
            prev = Snapshot(r.dir)
            diverged = self.base.diff(prev)
            if diverged:
                self.stats["changes"] += 1
                self._problem("STATE", "could not verify refused writes [%s]: a fresh mount "
                              "replaying the %d earlier writes differs in %s%s"
                              % (batch_desc, self.base_len, ", ".join(diverged[:5]),
                                 "; the batch changed " + ", ".join(known_change[:5])
                                 if known_change else ""))
                return
            found = False
            for i in self.batch:
                rel, label, data, off, res = self.log[i]
                res2 = self.write_raw(r.dir, rel, data, off)
                if not r.alive():
                    self.stats["crashes"] += 1
                    self._problem("CRASH", "replaying %s <- %s killed the daemon" % (rel, label))
                    return
                now = Snapshot(r.dir)
                changed = prev.diff(now)
                if changed:
                    found = True
                    self._judge_change(i, changed)
                if outcome(res2) != outcome(res):
                    self._problem("NOTE", "%s <- %s gave %s, %s on replay" % (rel, label, res, res2))
                prev = now
            if known_change and not found:
                self.stats["changes"] += 1
                self._problem("STATE", "refused writes [%s] changed %s together; no single one "
                              "does on a fresh mount" % (batch_desc, ", ".join(known_change[:5])))
        finally:
            r.close()
            shutil.rmtree(tmpdir, ignore_errors=True)

    # -- the sweep

    def predict(self, rel, label, data, off):
        seen = self.probed.get((rel, label))
        if seen is not None:
            return seen
        exp = E.expected_for(rel, label, data, off, self.m.dir)
        if exp is not None and "|" not in exp:
            return exp
        return self.learned.get((kind_of(rel), label))

    def plan(self, files):
        """The sweep's writes, in order: files in chunks of self.chunk; in a
        chunk, first every input predicted refused (of all its files: one
        batch, one closing snapshot), then the inputs that may be accepted.
        A snapshot costs a read of the whole machine, and the checking pass
        takes one where a refused run starts after an accepted write and
        one where it ends, so this is about two per chunk instead of two
        per file. The refused writes of a chunk meet the state the previous
        chunks' accepted writes left; predictions are made as the chunk
        starts, from what earlier chunks taught."""
        # Files whose accepted writes remount the machine come last, in
        # chunks of their own: their accepted writes end their chunk, so a
        # remount is followed by no refused write that would need a
        # snapshot of the fresh machine.
        # Files whose refused writes may change the machine by design
        # (expected.ALLOWED_CHANGES) are chunks of one: the change is then
        # localized among that file's writes only.
        gentle = [f for f in files if not E.destructive(f) and not E.quirky(f)]
        chunks = [gentle[i:i + self.chunk] for i in range(0, len(gentle), self.chunk)]
        chunks += [[f] for f in files if E.quirky(f) and not E.destructive(f)]
        rough = [f for f in files if E.destructive(f)]
        chunks += [rough[i:i + self.chunk] for i in range(0, len(rough), self.chunk)]
        for i, chunk in enumerate(chunks):
            refused, rest = [], []
            for rel in chunk:
                for inp in self.inputs:
                    pred = self.predict(rel, inp[0], inp[1], inp[2])
                    (rest if pred is None or pred == "OK" else refused).append((i, rel) + inp)
            yield from refused + rest

    def write_one(self, rel, label, data, off):
        pred = self.predict(rel, label, data, off)
        if pred is None or pred == "OK":
            # May be accepted: its "before" must be a snapshot.
            self._close_batch()
            if pred is None:
                self._ensure_base()
        else:
            self._ensure_base()
        res = self.write_raw(self.m.dir, rel, data, off)
        self.log.append((rel, label, data, off, res))
        self.stats["tried"] += 1
        got = outcome(res)
        if got == "OK":
            self.stats["accepted"] += 1
        else:
            self.stats["refused"][res] = self.stats["refused"].get(res, 0) + 1
        if self.verbose:
            print("  %-60s %-13s %s" % (rel, label, res))
        self.learned[(kind_of(rel), label)] = got

        if not self.m.alive():
            self.stats["crashes"] += 1
            self._problem("CRASH", "%s <- %s (%s)" % (rel, label, res))
            self.log.pop()
            if self.batch:
                self._replay_batch()
            self._restart()
            return
        exp = E.expected_for(rel, label, data, off, self.m.dir)
        if exp is not None and got not in exp.split("|"):
            self.stats["mismatch"] += 1
            self._problem("ERRNO", "%s <- %s: got %s, kernel's %s" % (rel, label, res, exp))
        if got == "OK":
            if self.batch:
                # Mispredicted: the batch's closing state is gone.
                self.log.pop()
                self._replay_batch()
                self.log.append((rel, label, data, off, res))
            self.base, self.batch = None, []
            if E.destructive(rel):
                self._restart()
        elif self.base is not None:
            self.batch.append(len(self.log) - 1)
        else:
            # Predicted accepted, refused, after an accepted write with no
            # snapshot since: the state before it is only reachable by replay.
            self.base_len = len(self.log) - 1
            self.batch = [len(self.log) - 1]
            tmpdir = tempfile.mkdtemp(prefix="vsysfs-hostile-replay.")
            r = Mount(self.daemon, self._replay_opts(tmpdir))
            try:
                r.start()
                for w in self.log[:self.base_len]:
                    self.write_raw(r.dir, w[0], w[2], w[3])
                self.base = Snapshot(r.dir)
            finally:
                r.close()
                shutil.rmtree(tmpdir, ignore_errors=True)
            # The batch now starts at that replayed state; closing it
            # compares the live mount with it (and replays again if needed).
            self._close_batch()

    def _learning_pass(self, writes):
        """Makes `writes` ((chunk, rel, label, data, off), in order) on a
        mount of its own, with no snapshot and no judgement; returns each
        (rel, label)'s outcome."""
        seen = {}
        m = Mount(self.daemon, self._replay_opts(self._learn_dir))
        try:
            m.start()
            for _, rel, label, data, off in writes:
                if not m.alive():
                    m.restart()
                if not os.path.exists(os.path.join(m.dir, rel)):
                    continue  # removed by an earlier accepted write
                got = outcome(self.write_raw(m.dir, rel, data, off))
                self.learned[(kind_of(rel), label)] = got
                seen[(rel, label)] = got
                if not m.alive() or (got == "OK" and E.destructive(rel)):
                    m.restart()
        finally:
            m.close()
        return seen

    def _learn(self, files):
        """The learning passes. Snapshots are the sweep's cost, and the
        checking pass needs one only where a run of refused writes starts
        after an accepted write and where it ends; so it should know, before
        each write, whether the write will be accepted. The first pass makes
        the writes in plan() order and learns each outcome; every chunk is
        then reordered, refused first; the second pass makes the writes in
        that order and learns their outcomes (the machine is deterministic
        under the manual clock: the checking pass, in the same order, sees
        the same ones). A write that behaves differently in the checking
        pass is still checked, by the slower paths of write_one(); learning
        can only make the sweep faster."""
        first = list(self.plan(files))
        seen = self._learning_pass(first)
        order = sorted(range(len(first)),
                       key=lambda i: (first[i][0], seen.get(first[i][1:3]) == "OK", i))
        self.sequence = [first[i] for i in order]
        self.probed = self._learning_pass(self.sequence)
        self.learned = {}

    def run(self, select=None):
        start = time.time()
        snaps0 = Snapshot.count
        self._learn_dir = tempfile.mkdtemp(prefix="vsysfs-hostile-learn.")
        try:
            self.m.start()
            writable, _, _ = walk(self.m.dir)
            self.stats["all_files"] = len(writable)
            files = select(writable) if select else writable
            self.stats["files"] = len(files)
            if self.learn:
                self._learn(files)
            # The checking pass makes the learning pass's writes in the
            # same order (so the same state meets each write).
            for _, rel, label, data, off in (self.sequence if self.learn else self.plan(files)):
                if not self.m.alive():
                    self._restart()
                if not os.path.exists(os.path.join(self.m.dir, rel)):
                    continue  # removed by an earlier accepted write
                self.write_one(rel, label, data, off)
            self._close_batch()
            # the last snapshot's reads count too
            time.sleep(0.2)
            if not self.m.alive():
                self.stats["crashes"] += 1
                self._problem("CRASH", "daemon dead after the sweep's last reads")
            elif self.state:
                self._check_state_replay()
        finally:
            self.m.close()
            shutil.rmtree(self._learn_dir, ignore_errors=True)
            self.stats["snapshots"] = Snapshot.count - snaps0
            self.stats["seconds"] = time.time() - start
        return self.stats, self.problems

    def _check_state_replay(self):
        # -o state: everything the corpus got accepted (binary garbage, NULs,
        # page-sized writes) was journaled; kill -9, remount with the same
        # state file, and the machine must read back the same.
        final = Snapshot(self.m.dir)
        os.kill(self.m.pid, 9)
        time.sleep(0.2)
        self.m.stop()
        self.m.start()
        diff = final.diff(Snapshot(self.m.dir))
        self.stats["replay"] = "same" if not diff else "DIFFERS"
        if diff:
            self.stats["changes"] += 1
            self._problem("STATE", "after kill -9 and replay, differs in %s" % ", ".join(diff[:5]))


# --- the sweep checks itself ------------------------------------------------------

class PlantedFaults(MachineSweep):
    """The test machine with two planted bugs, to prove the sweep catches
    them and names the exact (file, input):
      secret <- "junk"     refused (EINVAL) but sets value to 42 first:
                           caught when its batch closes;
      value <- "\n"        refused but sets secret to 99 first, and the next
                           input, value <- "junk", is accepted (a kernel
                           EINVAL): the batch's closing state is gone, so
                           only the fresh-mount replay can catch it."""
    DEV = "devices/virtual/vsysfs_test/testdev0/"

    def write_raw(self, mnt, rel, data, off):
        if rel == self.DEV + "secret" and data == b"junk":
            do_write(os.path.join(mnt, self.DEV + "value"), b"42\n", 0)
        if rel == self.DEV + "value" and data == b"\n":
            do_write(os.path.join(mnt, self.DEV + "secret"), b"99\n", 0)
        if rel == self.DEV + "value" and data == b"junk":
            data = b"7\n"
        return do_write(os.path.join(mnt, rel), data, off)


def self_check(test_daemon, testdev_toml, inputs, learn):
    """Run PlantedFaults; return the list of what the sweep failed to see.
    With the learning pass, value <- "newline" is caught when its batch
    closes before the (known) accepted value <- "junk"; without it, only
    the fresh-mount replay catches it: both paths are checked."""
    sw = PlantedFaults("self-check", test_daemon, ["-o", "clock=manual,machine=" + testdev_toml],
                       inputs, False)
    sw.learn = learn
    st, problems = sw.run(lambda w: [r for r in w if r.startswith(PlantedFaults.DEV)])
    want = ["STATE: refused %ssecret <- junk" % PlantedFaults.DEV,
            "STATE: refused %svalue <- newline" % PlantedFaults.DEV,
            "ERRNO: %svalue <- junk: got OK" % PlantedFaults.DEV]
    missed = [w for w in want if not any(p.startswith(w) for p in problems)]
    if st["changes"] != 2 or st["mismatch"] != 1 or st["crashes"]:
        missed.append("counts: changes %d (want 2), errno mismatches %d (want 1), crashes %d"
                      % (st["changes"], st["mismatch"], st["crashes"]))
    return missed, st


# --- choosing what to sweep ------------------------------------------------------

def representatives(writable):
    """First and last file of each kind, in sweep (sorted) order."""
    by_kind = {}
    for rel in writable:
        by_kind.setdefault(kind_of(rel), []).append(rel)
    keep = set()
    for rels in by_kind.values():
        keep.add(rels[0])
        keep.add(rels[-1])
    return [r for r in writable if r in keep]


def signature(daemon, opts):
    """What a machine brings to the sweep: for each writable file, its
    (kind, initial content with digit runs as N); "-" for write-only ones."""
    m = Mount(daemon, opts)
    try:
        m.start()
        writable, _, _ = walk(m.dir)
        sig = {}
        for rel in writable:
            p = os.path.join(m.dir, rel)
            c = read_file(p) if os.lstat(p).st_mode & 0o444 else "-"
            if isinstance(c, bytes):
                c = re.sub(rb"\d+", b"N", c[:256])
            sig[rel] = (kind_of(rel), c)
        return sig
    finally:
        m.close()


def new_representatives(sig, covered):
    """For an example machine in the quick form: the representatives of the
    files whose (kind, content) no machine swept before it had; what it
    shares with them was swept there."""
    def select(writable):
        return representatives([r for r in writable if sig.get(r) not in covered])
    return select


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true",
                    help="the CI form: a corpus subset, one pair of files per kind, and only "
                         "the example machines that bring a new kind")
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build/vsysfs"))
    ap.add_argument("--test-daemon", default=os.path.join(ROOT, "build/vsysfs-test"))
    ap.add_argument("--only", help="sweep only machines whose name contains this")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--no-self-check", action="store_true",
                    help="skip the run with planted faults that proves the sweep can fail")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("test-hostile: must run as root (the control plane is root-only)", file=sys.stderr)
        return 2

    state_dir = tempfile.mkdtemp(prefix="vsysfs-hostile-state.")
    state = os.path.join(state_dir, "state")
    testdev_toml = os.path.join(ROOT, "tests/integration/testdev.toml")
    # (name, daemon, opts, state file, example machine?)
    machines = [("default (built-in)", args.daemon, ["-o", "clock=manual"], None, False),
                ("testdev", args.test_daemon,
                 ["-o", "clock=manual,machine=" + testdev_toml], None, False),
                ("testdev -o state (replay)", args.test_daemon,
                 ["-o", "clock=manual,machine=%s,state=%s" % (testdev_toml, state)], state, False)]
    for toml in sorted(glob.glob(os.path.join(ROOT, "machines/*.toml"))):
        machines.append((os.path.basename(toml), args.daemon,
                         ["-o", "clock=manual,machine=" + toml], None, True))
    if args.only:
        machines = [m for m in machines if args.only in m[0]]

    inputs = corpus(args.quick)
    start = time.time()
    if not args.no_self_check:
        for learn in (True, False):
            missed, st = self_check(args.test_daemon, testdev_toml, inputs, learn)
            print("self-check (planted faults on the test machine, %s learning pass): %s "
                  "(%d writes, %d snapshots, %d replays, %.1f s)"
                  % ("with" if learn else "without", "caught" if not missed else "MISSED",
                     st["tried"], st["snapshots"], st["replays"], st["seconds"]))
            if missed:
                for m in missed:
                    print("self-check missed: " + m)
                return 1
    keys = ("files", "tried", "accepted", "crashes", "changes", "mismatch", "quirks",
            "snapshots", "replays")
    total = dict.fromkeys(keys, 0)
    refused_total = {}
    all_problems = []
    covered = set()  # (kind, content) of the machines swept so far (--quick)
    print("form: %s; corpus: %d inputs" % ("quick" if args.quick else "full", len(inputs)))
    hdr = "%-26s %9s %6s %8s %7s %7s %8s %6s %5s %7s %7s %5s  %s"
    row = "%-26s %9s %6d %8d %7d %7d %8d %6d %5d %7d %7s %4.0fs  %s"
    print(hdr % ("machine", "files", "tried", "accepted", "crashes", "changes", "mismatch",
                 "quirks", "snaps", "replays", "state", "time", "refused by errno"))
    for name, daemon, opts, st_file, example in machines:
        select = None
        if args.quick:
            sig = signature(daemon, opts)
            new = set(sig.values()) - covered
            if example and not new:
                print("%-26s skipped (--quick): no writable kind the machines above lack" % name)
                continue
            select = new_representatives(sig, frozenset(covered)) if example else representatives
            covered |= new
        sw = MachineSweep(name, daemon, opts, inputs, args.verbose, st_file)
        st, problems = sw.run(select)
        for k in keys:
            total[k] += st[k]
        for k, v in st["refused"].items():
            refused_total[k] = refused_total.get(k, 0) + v
        refused = " ".join("%s=%d" % kv for kv in sorted(st["refused"].items()))
        print(row % (name, "%d/%d" % (st["files"], st["all_files"]), st["tried"], st["accepted"],
                     st["crashes"], st["changes"], st["mismatch"], st["quirks"], st["snapshots"],
                     st["replays"], st["replay"], st["seconds"], refused))
        sys.stdout.flush()
        all_problems += ["[%s] %s" % (name, p) for p in problems]
    refused = " ".join("%s=%d" % kv for kv in sorted(refused_total.items()))
    print(row % ("TOTAL", total["files"], total["tried"], total["accepted"], total["crashes"],
                 total["changes"], total["mismatch"], total["quirks"], total["snapshots"],
                 total["replays"], "", time.time() - start, refused))
    shutil.rmtree(state_dir, ignore_errors=True)
    print("crashes: %d (must be 0); state changes on refused writes: %d (must be 0); "
          "errno mismatches: %d (must be 0); documented kernel side effects: %d; %.1f s"
          % (total["crashes"], total["changes"], total["mismatch"], total["quirks"],
             time.time() - start))
    print("files: swept/writable; tried: writes (the corpus has %d inputs); changes: refused "
          "writes that changed the machine; mismatch: errnos that are not the kernel's "
          "(expected.py); quirks: refused writes whose change the kernel makes too "
          "(expected.ALLOWED_CHANGES); snaps/replays: machine snapshots taken and fresh-mount "
          "replays; state: -o state kill -9 replay check" % len(inputs))
    for p in all_problems:
        print(p)
    return 1 if (total["crashes"] or total["changes"] or total["mismatch"]) else 0


if __name__ == "__main__":
    sys.exit(main())
