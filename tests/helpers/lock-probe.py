#!/usr/bin/env python3
"""lock-probe: fcntl lock scenarios between real processes, for the bats
suites. The same scenario runs on a vsysfs file and on a tmpfs file (the
kernel's own fs/locks.c, the oracle); the outputs must be equal.

usage: lock-probe.py SCENARIO FILE

Each scenario prints one line per step: "NAME RESULT", RESULT being OK, an
errno name (EAGAIN, EDEADLK, ...) or PENDING (a blocking request that had
not returned after a grace period). Every wait is bounded: a request still
blocked for 10 s is interrupted (SIGALRM) and reported as TIMEOUT.

Scenarios:
  ofd-close    a process takes an OFD write lock, closes the descriptor and
               exits; then F_OFD_SETLK, F_OFD_SETLKW and F_SETLK of another
               process (the lock went with the last close).
  ofd-dup      an OFD lock survives the close of a dup of its descriptor and
               of a fork child's copy; it goes with the last close.
  posix-close  a POSIX lock goes when its process closes any descriptor of
               the file (not the one it locked through).
  deadlock     A holds bytes 0-9 and waits for 10-19; B holds 10-19 and asks
               for 0-9 with F_SETLKW: EDEADLK; A still waits, and gets the
               lock once B unlocks.
  deadlock3    the same cycle through three processes and three ranges.
"""

import errno
import fcntl
import os
import select
import signal
import struct
import sys

GRACE = 0.5  # seconds a blocking request is given before it counts as PENDING
LIMIT = 10  # seconds before any blocked request is interrupted


def flock_struct(ltype, start, length):
    # struct flock on x86_64/aarch64: short l_type, short l_whence, off_t
    # l_start, off_t l_len, pid_t l_pid (+ padding).
    return struct.pack("hhqqi4x", ltype, os.SEEK_SET, start, length, 0)


class Proc:
    """A forked worker that runs lock commands sent over a pipe."""

    def __init__(self, path):
        self.path = path
        cr, cw = os.pipe()
        rr, rw = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(cw)
            os.close(rr)
            self._serve(cr, rw)
            os._exit(0)
        os.close(cr)
        os.close(rw)
        self.pid, self.cmd, self.reply = pid, cw, rr
        self.pending = False

    def _serve(self, cr, rw):
        # The handler raises: Python would retry an interrupted fcntl (PEP 475).
        def on_alarm(*_):
            raise TimeoutError
        signal.signal(signal.SIGALRM, on_alarm)
        fds = {}
        rf = os.fdopen(cr, "r")
        for line in rf:
            words = line.split()
            op, args = words[0], words[1:]
            res = "OK"
            try:
                if op == "open":
                    fds[args[0]] = os.open(self.path, os.O_RDWR)
                elif op == "close":
                    os.close(fds.pop(args[0]))
                elif op == "dup":
                    fds[args[1]] = os.dup(fds[args[0]])
                elif op == "forkclose":
                    # A child inherits every descriptor, closes them and exits.
                    child = os.fork()
                    if child == 0:
                        for fd in fds.values():
                            os.close(fd)
                        os._exit(0)
                    os.waitpid(child, 0)
                elif op == "exit":
                    os._exit(0)
                else:
                    cmd = {
                        "setlk": fcntl.F_SETLK,
                        "setlkw": fcntl.F_SETLKW,
                        "ofd": fcntl.F_OFD_SETLK,
                        "ofdw": fcntl.F_OFD_SETLKW,
                    }[op]
                    ltype = {"w": fcntl.F_WRLCK, "r": fcntl.F_RDLCK, "u": fcntl.F_UNLCK}[args[1]]
                    signal.alarm(LIMIT)
                    try:
                        fcntl.fcntl(fds[args[0]], cmd,
                                    flock_struct(ltype, int(args[2]), int(args[3])))
                    finally:
                        signal.alarm(0)
            except TimeoutError:
                res = "TIMEOUT"
            except OSError as e:
                # errorcode names 35 EDEADLOCK, its alias.
                res = "EDEADLK" if e.errno == errno.EDEADLK else errno.errorcode.get(e.errno, str(e.errno))
            os.write(rw, (res + "\n").encode())

    def send(self, line):
        os.write(self.cmd, (line + "\n").encode())
        self.pending = True

    def result(self, timeout=GRACE):
        """The reply to the last command, or PENDING after `timeout`."""
        r, _, _ = select.select([self.reply], [], [], timeout)
        if not r:
            return "PENDING"
        self.pending = False
        data = b""
        while not data.endswith(b"\n"):
            data += os.read(self.reply, 64)
        return data.decode().strip()

    def do(self, line, timeout=None):
        """Sends a command and returns its reply. A blocking lock request is
        given GRACE (then PENDING) unless told otherwise; anything else
        always answers, and is given the full LIMIT even on a loaded machine."""
        if timeout is None:
            timeout = GRACE if line.split()[0] in ("setlkw", "ofdw") else LIMIT + 2
        self.send(line)
        return self.result(timeout)

    def finish(self):
        if self.pending:
            print("late", self.result(LIMIT + 2))
        try:
            os.write(self.cmd, b"exit\n")
        except OSError:
            pass
        os.waitpid(self.pid, 0)


def step(name, value):
    print(name, value, flush=True)


def ofd_close(path):
    a = Proc(path)
    step("a-open", a.do("open f"))
    step("a-ofd-w", a.do("ofd f w 0 0"))
    step("a-close", a.do("close f"))
    a.finish()
    b = Proc(path)
    b.do("open f")
    step("b-ofd-w", b.do("ofd f w 0 0"))
    b.do("ofd f u 0 0")
    step("b-ofdw-w", b.do("ofdw f w 0 0", LIMIT + 2))
    b.do("close f")
    b.do("open g")
    step("b-posix-w", b.do("setlk g w 0 0"))
    b.finish()


def ofd_dup(path):
    a, b = Proc(path), Proc(path)
    a.do("open f")
    b.do("open f")
    step("a-ofd-w", a.do("ofd f w 0 0"))
    a.do("dup f d")
    step("a-close-dup", a.do("close d"))
    step("b-after-dup-close", b.do("ofd f w 0 0"))
    step("a-forkclose", a.do("forkclose"))
    step("b-after-fork-close", b.do("ofd f w 0 0"))
    # A's own POSIX close rule does not touch an OFD lock either.
    a.do("open p")
    step("a-close-other", a.do("close p"))
    step("b-after-other-close", b.do("ofd f w 0 0"))
    step("b-ofdw-waits", b.do("ofdw f w 0 0"))
    step("a-close-last", a.do("close f"))
    step("b-granted", b.result(LIMIT + 2))
    a.finish()
    b.finish()


def posix_close(path):
    a, b = Proc(path), Proc(path)
    a.do("open f")
    b.do("open f")
    step("a-setlk-w", a.do("setlk f w 0 0"))
    a.do("open g")
    step("b-setlk-held", b.do("setlk f w 0 0"))
    step("a-close-other-fd", a.do("close g"))
    step("b-setlk-after", b.do("setlk f w 0 0"))
    a.finish()
    b.finish()


def deadlock(path):
    a, b = Proc(path), Proc(path)
    a.do("open f")
    b.do("open f")
    step("a-0-9", a.do("setlk f w 0 10"))
    step("b-10-19", b.do("setlk f w 10 10"))
    step("a-waits-10-19", a.do("setlkw f w 10 10"))
    step("b-asks-0-9", b.do("setlkw f w 0 10", LIMIT + 2))
    step("b-unlock", b.do("setlk f u 10 10"))
    step("a-granted", a.result(LIMIT + 2))
    a.finish()
    b.finish()


def deadlock3(path):
    ps = [Proc(path) for _ in range(3)]
    for i, p in enumerate(ps):
        p.do("open f")
        step(f"p{i}-holds", p.do(f"setlk f w {i * 10} 10"))
    step("p0-waits", ps[0].do("setlkw f w 10 10"))
    step("p1-waits", ps[1].do("setlkw f w 20 10"))
    step("p2-closes-cycle", ps[2].do("setlkw f w 0 10", LIMIT + 2))
    step("p2-unlock", ps[2].do("setlk f u 20 10"))
    step("p1-granted", ps[1].result(LIMIT + 2))
    step("p1-unlock", ps[1].do("setlk f u 10 20"))
    step("p0-granted", ps[0].result(LIMIT + 2))
    for p in ps:
        p.finish()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    scenarios = {
        "ofd-close": ofd_close,
        "ofd-dup": ofd_dup,
        "posix-close": posix_close,
        "deadlock": deadlock,
        "deadlock3": deadlock3,
    }
    if sys.argv[1] not in scenarios:
        sys.exit(__doc__)
    scenarios[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()
