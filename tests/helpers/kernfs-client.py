#!/usr/bin/env python3
# kernfs-client: the system calls of tests/integration/kernfs_surface.bats
# that the shell cannot make (mmap, xattrs, utimensat, lseek, O_APPEND
# pwrite...). Each command prints its result on one line: the value, or
# OK, or the errno name (ENODEV, EINVAL, ...), so that a test compares
# one word. It runs the same way against the real /sys (read-only
# commands only) and a vsysfs mount.
#
#   mmap PATH private|shared        mmap(2) one page, PROT_READ: OK or errno
#   mmap-read PATH                  MAP_PRIVATE, then the first 16 bytes (hex)
#   mmap-touch PATH                 MAP_PRIVATE through libc, read byte 0 (SIGBUS past EOF)
#   mmap-stat PATH                  MAP_PRIVATE + touch, then fstat's size
#   open PATH FLAG...               open(2) with O_RDONLY plus flags (direct, append, wronly, rdwr)
#   setfl-direct PATH               fcntl(F_SETFL, O_DIRECT) on an O_RDONLY descriptor
#   getxattr PATH NAME              the value (repr) or errno
#   setxattr PATH NAME VALUE [create|replace]
#   removexattr PATH NAME
#   listxattr PATH                  names joined by ',' (may be empty)
#   utime PATH ATIME_NS MTIME_NS    utimensat with explicit times
#   times PATH                      "atime_ns mtime_ns ctime_ns"
#   lseek PATH OFFSET               lseek(SEEK_SET): the new offset or errno
#   truncate PATH SIZE              truncate(2): OK or errno
#   append-write PATH POS DATA      open O_WRONLY|O_APPEND, lseek(POS), write: count or errno
import errno
import fcntl
import mmap
import os
import sys


def err(e: OSError) -> str:
    return errno.errorcode.get(e.errno, str(e.errno))


def run(argv):
    cmd, path = argv[0], argv[1]
    try:
        if cmd == "mmap":
            fd = os.open(path, os.O_RDONLY)
            flags = mmap.MAP_PRIVATE if argv[2] == "private" else mmap.MAP_SHARED
            # Python's mmap checks the length against st_size first; a page
            # within a 4096-byte text attribute passes, so it is the kernel
            # that answers.
            size = os.fstat(fd).st_size
            length = size if 0 < size < mmap.PAGESIZE else mmap.PAGESIZE
            if size == 0:
                return mmap_raw(fd, flags)
            m = mmap.mmap(fd, length, flags, mmap.PROT_READ)
            m.close()
            return "OK"
        if cmd == "mmap-read":
            fd = os.open(path, os.O_RDONLY)
            m = mmap.mmap(fd, mmap.PAGESIZE, mmap.MAP_PRIVATE, mmap.PROT_READ)
            return m[:16].hex()
        if cmd == "mmap-touch":
            import ctypes
            fd = os.open(path, os.O_RDONLY)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.mmap.restype = ctypes.c_void_p
            libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                  ctypes.c_int, ctypes.c_long]
            addr = libc.mmap(None, mmap.PAGESIZE, mmap.PROT_READ, mmap.MAP_PRIVATE, fd, 0)
            if addr is None or addr == ctypes.c_void_p(-1).value:
                return errno.errorcode[ctypes.get_errno()]
            return ctypes.string_at(addr, 1).hex()
        if cmd == "mmap-stat":
            fd = os.open(path, os.O_RDONLY)
            size = os.fstat(fd).st_size
            m = mmap.mmap(fd, min(size, mmap.PAGESIZE), mmap.MAP_PRIVATE, mmap.PROT_READ)
            _ = m[0]  # the fault: a page-cache READ
            m.close()
            return str(os.fstat(fd).st_size)
        if cmd == "open":
            flags = os.O_RDONLY
            for f in argv[2:]:
                flags |= {"direct": os.O_DIRECT, "append": os.O_APPEND,
                          "wronly": os.O_WRONLY, "rdwr": os.O_RDWR}[f]
            os.close(os.open(path, flags))
            return "OK"
        if cmd == "setfl-direct":
            fd = os.open(path, os.O_RDONLY)
            fcntl.fcntl(fd, fcntl.F_SETFL, os.O_DIRECT)
            return "OK"
        if cmd == "getxattr":
            return repr(os.getxattr(path, argv[2], follow_symlinks=False))
        if cmd == "setxattr":
            flags = {"": 0, "create": os.XATTR_CREATE, "replace": os.XATTR_REPLACE}[
                argv[4] if len(argv) > 4 else ""]
            os.setxattr(path, argv[2], argv[3].encode(), flags, follow_symlinks=False)
            return "OK"
        if cmd == "removexattr":
            os.removexattr(path, argv[2], follow_symlinks=False)
            return "OK"
        if cmd == "listxattr":
            return ",".join(os.listxattr(path, follow_symlinks=False))
        if cmd == "utime":
            os.utime(path, ns=(int(argv[2]), int(argv[3])))
            return "OK"
        if cmd == "times":
            st = os.stat(path)
            return f"{st.st_atime_ns} {st.st_mtime_ns} {st.st_ctime_ns}"
        if cmd == "lseek":
            fd = os.open(path, os.O_RDONLY)
            return str(os.lseek(fd, int(argv[2]), os.SEEK_SET))
        if cmd == "truncate":
            os.truncate(path, int(argv[2]))
            return "OK"
        if cmd == "append-write":
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.lseek(fd, int(argv[2]), os.SEEK_SET)
            return str(os.write(fd, argv[3].encode()))
    except OSError as e:
        return err(e)
    raise SystemExit(f"kernfs-client: unknown command {cmd}")


def mmap_raw(fd, flags):
    # mmap of a size-0 file (Python refuses it itself): through libc.
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    addr = libc.mmap(None, mmap.PAGESIZE, mmap.PROT_READ, flags, fd, 0)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        return errno.errorcode[ctypes.get_errno()]
    return "OK"


if __name__ == "__main__":
    print(run(sys.argv[1:]))
