"""What the kernel answers to each hostile input, per file (docs/testing.md).

The sweep (sweep.py) discovers files; this module is the only place that
names them. Each row is (fnmatch pattern, rule, citation): the rule gets
the bytes written and the offset and returns the kernel's outcome: "OK"
(accepted, any count) or an errno name; "A|B" when the kernel's answer
depends on something sysfs does not show (a driver op, a queue count), with
the reason in the row's comment. The last matching row wins.

The rules are written from the kernel's store functions, not from what
vsysfs does: lib/kstrtox.c (kstrto*), lib/vsprintf.c (simple_strto*),
lib/bitmap-str.c (bitmap_parse), lib/string.c (sysfs_streq),
lib/kobject_uevent.c (kobject_synth_uevent), and each driver's store, cited
per row. "ref N" is section N of docs/kernel-semantics.md.

Generic sysfs rules every row inherits (ref 1.4, 1.5, fs/kernfs/file.c
kernfs_fop_write_iter, fs/sysfs/file.c): a zero-length write never reaches
store() and returns 0; a text store gets at most 4096 bytes, NUL-terminated,
and the offset is ignored; a bin write gets the real offset, at most 4096
bytes, and when the attribute has a size, pos >= size is EFBIG and the count
is trimmed to size - pos. The sweep runs as root with every capability, so
the stores' EPERM checks never fire.
"""
import fnmatch
import os
import re

PAGE = 4096
U64 = 1 << 64

# --- kernel parsers, on the buffer store() sees --------------------------------


def text_buf(data):
    """The buffer a text store() gets: the first page of the write."""
    return data[:PAGE]


def cstr(data):
    """What a C string function sees of it: up to the first NUL."""
    return text_buf(data).split(b"\0", 1)[0]


_HEX = b"0123456789abcdefABCDEF"


def _fixup_radix(s, base):
    # lib/kstrtox.c _parse_integer_fixup_radix
    if base == 0:
        if s[:1] == b"0":
            base = 16 if s[1:2].lower() == b"x" and s[2:3] != b"" and s[2:3] in _HEX else 8
        else:
            base = 10
    if base == 16 and s[:1] == b"0" and s[1:2].lower() == b"x":
        s = s[2:]
    return s, base


def _parse_integer(s, base):
    """lib/kstrtox.c _parse_integer: (chars consumed, value mod 2^64, overflowed)."""
    res, rv, over = 0, 0, False
    for ch in s:
        c = chr(ch).lower()
        if "0" <= c <= "9":
            val = ord(c) - ord("0")
        elif "a" <= c <= "f":
            val = ord(c) - ord("a") + 10
        else:
            break
        if val >= base:
            break
        res = res * base + val
        if res >= U64:
            over = True
            res %= U64
        rv += 1
    return rv, res, over


def _kstrtoull_raw(s, base):
    s, base = _fixup_radix(s, base)
    rv, res, over = _parse_integer(s, base)
    if over:
        return "ERANGE"
    if rv == 0:
        return "EINVAL"
    s = s[rv:]
    if s[:1] == b"\n":
        s = s[1:]
    if s:
        return "EINVAL"
    return res


def kstrtoull(data, base=0):
    """An int, or "EINVAL"/"ERANGE". kstrtoul is the same on 64-bit."""
    s = cstr(data)
    if s[:1] == b"+":
        s = s[1:]
    return _kstrtoull_raw(s, base)


def kstrtouint(data, base=0):
    v = kstrtoull(data, base)
    if isinstance(v, int) and v > 0xFFFFFFFF:
        return "ERANGE"
    return v


def kstrtoint(data, base=0):
    """kstrtoll then the int range (lib/kstrtox.c kstrtoll, kstrtoint)."""
    s = cstr(data)
    if s[:1] == b"-":
        v = _kstrtoull_raw(s[1:], base)
        if isinstance(v, str):
            return v
        if v > (1 << 63):
            return "ERANGE"
        v = -v
    else:
        v = kstrtoull(data, base)
        if isinstance(v, str):
            return v
        if v >= (1 << 63):
            return "ERANGE"
    if not -(1 << 31) <= v < (1 << 31):
        return "ERANGE"
    return v


def simple_strtoull(data, base=0):
    """lib/vsprintf.c simple_strtoull: never fails; junk is 0, no sign, no
    leading spaces, and an overflowing number wraps modulo 2^64."""
    s, base = _fixup_radix(cstr(data), base)
    return _parse_integer(s, base)[1]


def memparse(data):
    """lib/cmdline.c memparse: simple_strtoull base 0, then one optional
    K/M/G/T/P/E suffix (either case), each 10 more bits of shift."""
    s, base = _fixup_radix(cstr(data), 0)
    n, v, _ = _parse_integer(s, base)
    shift = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}.get(chr(s[n]).lower() if n < len(s) else "", 0)
    return (v << shift) % U64


def kstrtobool(data):
    # lib/kstrtox.c kstrtobool: the first character decides ("on"/"of" by two)
    s = cstr(data) + b"\0\0"
    c = chr(s[0])
    if c in "yYtT1":
        return True
    if c in "nNfF0":
        return False
    if c in "oO":
        if chr(s[1]) in "nN":
            return True
        if chr(s[1]) in "fF":
            return False
    return "EINVAL"


def sysfs_streq(data, lit):
    # lib/string.c sysfs_streq: equal, ignoring one trailing newline on either
    s = cstr(data)
    if s.endswith(b"\n"):
        s = s[:-1]
    return s == lit


_UEVENT_ACTIONS = (b"add", b"remove", b"change", b"move", b"online", b"offline", b"bind", b"unbind")
_UUID_LEN = 36  # UUID_STRING_LEN
_UEVENT_NUM_ENVP = 64  # include/linux/kobject.h
_UEVENT_BUFFER_SIZE = 2048


def _trim_count(buf):
    if buf and buf[-1:] in (b"\n", b"\0"):
        buf = buf[:-1]
    return buf


def _isalnum(c):
    return chr(c).isascii() and chr(c).isalnum()


def _synth_args(buf):
    """lib/kobject_uevent.c kobject_action_args: the synthetic variables, or
    None (EINVAL; add_uevent_var's ENOMEM there is EINVAL too)."""
    buf = _trim_count(buf)
    if len(buf) < _UUID_LEN:
        return None
    for i, c in enumerate(buf[:_UUID_LEN]):
        if i in (8, 13, 18, 23):
            if c != ord("-"):
                return None
        elif c not in _HEX:
            return None
    env = [b"SYNTH_UUID=" + buf[:_UUID_LEN]]
    nxt, end = _UUID_LEN, len(buf)

    def word_end(start, delim):
        i = start
        while i < end and buf[i] != delim:
            if not _isalnum(buf[i]):
                return None
            i += 1
        return None if i == start else i

    while nxt < end:
        if buf[nxt] != ord(" "):
            return None
        key = nxt + 1
        if key >= end:
            return None
        nxt = word_end(key, ord("="))
        if nxt is None or nxt >= end:
            return None
        value = nxt + 1
        if value >= end:
            return None
        nxt = word_end(value, ord(" "))
        if nxt is None:
            return None
        env.append(b"SYNTH_ARG_" + buf[key:value - 1] + b"=" + buf[value:nxt])
    if len(env) > _UEVENT_NUM_ENVP or sum(len(v) + 1 for v in env) > _UEVENT_BUFFER_SIZE:
        return None
    return env


def synth_uevent(data):
    """lib/kobject_uevent.c kobject_synth_uevent, on the raw count (not the C
    string): kobject_action_type (one trailing '\\n' or NUL dropped; the
    action word ends at the first space, and strnchr/strncmp stop at a NUL:
    an action followed by NUL and more bytes is refused, the kernel reading
    past the action string), then, after a space, kobject_action_args:
    a UUID and space-separated KEY=VALUE pairs of alphanumerics. The store
    returns the error (drivers/base/core.c uevent_store). Near the uevent
    buffer's limits kobject_uevent_env may run out of room beside the
    device's own variables: ENOMEM."""
    buf = text_buf(data)
    count = len(_trim_count(buf))
    if not count:
        return "EINVAL"
    space = None
    for i in range(count):
        if buf[i] == 0:
            break
        if buf[i] == ord(" "):
            space = i
            break
    first = buf[:count if space is None else space]
    if first not in _UEVENT_ACTIONS:
        return "EINVAL"
    if space is None:
        return "OK"
    env = _synth_args(buf[space + 1:])
    if env is None:
        return "EINVAL"
    # ACTION, DEVPATH, SUBSYSTEM, SEQNUM and up to ~8 device variables.
    if len(env) + 12 > _UEVENT_NUM_ENVP or sum(len(v) + 1 for v in env) > _UEVENT_BUFFER_SIZE - 768:
        return "OK|ENOMEM"
    return "OK"


def bitmap_parse(data, nmaskbits=4096):
    """lib/bitmap-str.c bitmap_parse (5.10+): 32-bit hex chunks separated by
    commas, parsed from the end; spaces and commas between chunks skipped;
    the text ends at '\\n' or NUL; more than 8 digits in a chunk or more
    chunks than the mask holds is EOVERFLOW; any other character is EINVAL.
    Returns the set bits as an int, or the errno name."""
    buf = text_buf(data)
    end = len(buf)
    for i, ch in enumerate(buf):
        if ch in (0, 10):
            end = i
            break
    s = buf[:end]
    chunks = (nmaskbits + 31) // 32
    value, chunk, pos = 0, 0, len(s) - 1

    def end_of_region(c):
        return chr(c).isspace() or c == ord(",")

    while True:
        while pos >= 0 and end_of_region(s[pos]):
            pos -= 1
        if pos < 0:
            break
        if chunk >= chunks:
            return "EOVERFLOW"
        num = 0
        for i in range(0, 32, 4):
            c = s[pos]
            if c not in _HEX:
                return "EINVAL"
            num |= int(chr(c), 16) << i
            pos -= 1
            if pos < 0 or end_of_region(s[pos]):
                break
        else:
            if pos >= 0 and s[pos] in _HEX:
                return "EOVERFLOW"
        value |= num << (32 * chunk)
        chunk += 1
    if value >> nmaskbits:
        return "EOVERFLOW"
    return value


# --- rules: data, offset -> outcome ----------------------------------------------


def parse_then(parser, setter=lambda v: "OK", **kw):
    """A store that parses, returns the parser's errno, else setter(value)."""
    def rule(data):
        v = parser(data, **kw)
        if isinstance(v, str):
            return v
        return setter(v)
    return rule


def always(result):
    return lambda data, off: result


def bin_sized(size, inner=always("OK")):
    """A bin attribute with a size (fs/sysfs/file.c sysfs_kf_bin_write)."""
    def rule(data, off):
        if off >= size:
            return "EFBIG"
        return inner(data[:min(len(data), PAGE, size - off)], off)
    return rule


def text(fn):
    """A text store: the offset is ignored (ref 1.4)."""
    return lambda data, off: fn(data)


# dcdbas (ref 2.1, 2.2, 2.6; drivers/platform/x86/dell/dcdbas.c). The
# buffer maximum is 256 KiB, or the WSMT buffer (64 KiB - 8 on the default
# machine); the buffer only grows, so a size it already has is success.
# Every input of the corpus parses (simple_strtoul base 10) either to 0 or
# 1, or wraps to a value far above both limits, so the answer is the same
# on WSMT and non-WSMT machines.
def _dcdbas_buf_size(v):
    return "OK" if v <= 65528 else "EINVAL"


def _smi_request(v):
    # smi_request_store: the buffer (>= 17 bytes on every machine by the
    # time the sweep gets here: host_control_action grows it to 198 first)
    # is checked before the value; 0 zeroes the buffer; 1 and 2 raise the
    # SMI, refused with EBADR because the buffer's magic is not
    # SMI_CMD_MAGIC (the corpus zeroed it); anything else EINVAL.
    if v == 0:
        return "OK"
    if v in (1, 2):
        return "EBADR"
    return "EINVAL"


def _dcdbas_smi_data(data, off):
    # smi_data_write: pos + count > max_smi_data_buf_size -> EINVAL, else
    # grow and copy (bin size 0: no sysfs clamp except the page). The
    # corpus's offsets are below 8 KiB or 2^62, so the WSMT limit (65528 on
    # the default machine) and the 256 KiB one give the same answers.
    count = min(len(data), PAGE)
    return "EINVAL" if off + count > 65528 else "OK"


def _online(v):
    return "OK"  # device_online/device_offline of a hotpluggable CPU succeed


def _driver_override(data):
    # drivers/base/driver.c driver_set_override: len >= PAGE_SIZE - 1 is
    # EINVAL (the count, before strlen); otherwise stored (empty clears).
    return "EINVAL" if len(text_buf(data)) >= PAGE - 1 else "OK"


def _ifalias(data):
    # net/core/net-sysfs.c ifalias_store: one trailing '\n' dropped, then
    # dev_set_alias: len >= IFALIASZ (256) -> EINVAL (net/core/dev.c).
    n = len(text_buf(data))
    if n and text_buf(data)[-1:] == b"\n":
        n -= 1
    return "EINVAL" if n >= 256 else "OK"


def _bql_set(data):
    # net/core/net-sysfs.c bql_set: "max" or kstrtouint base 10, then
    # > DQL_MAX_LIMIT -> EINVAL.
    s = cstr(data)
    if s in (b"max", b"max\n"):
        return "OK"
    v = kstrtouint(data, 10)
    if isinstance(v, str):
        return v
    return "EINVAL" if v > (0xFFFFFFFF // 2) - 16 else "OK"


def _online_type(data):
    # drivers/base/memory.c mhp_online_type_from_str: sysfs_streq on each name.
    return any(sysfs_streq(data, w) for w in (b"offline", b"online", b"online_kernel",
                                               b"online_movable"))


def _pci_numa_node(data, off, mnt, rel):
    # drivers/pci/pci-sysfs.c numa_node_store: kstrtoint base 0, any error
    # mapped to EINVAL; NUMA_NO_NODE (-1) or an online node accepted.
    v = kstrtoint(text_buf(data), 0)
    if isinstance(v, str):
        return "EINVAL"
    if v == -1:
        return "OK"
    if v < 0 or v >= 1024:
        return "EINVAL"
    # node_online(v): devices/system/node/online (every machine has one: a
    # machine without [numa] gets the default topology of [net]'s widths).
    try:
        with open(os.path.join(mnt, "devices/system/node/online")) as f:
            online = f.read().strip()
    except OSError:
        return "OK|EINVAL"
    nodes = set()
    for part in online.split(","):
        lo, _, hi = part.partition("-")
        nodes.update(range(int(lo), int(hi or lo) + 1))
    return "OK" if v in nodes else "EINVAL"


def _rps(data):
    v = bitmap_parse(data)
    return v if isinstance(v, str) else "OK"


def with_tree(fn):
    """A rule that also looks at the mounted tree: fn(data, off, mnt, rel)."""
    fn.wants_tree = True
    return fn


def _xps(data, off, mnt, rel):
    queues = os.path.dirname(os.path.dirname(os.path.join(mnt, rel)))
    ntx = sum(1 for q in os.listdir(queues) if q.startswith("tx-"))
    return "ENOENT" if ntx <= 1 else _rps(data)


def _fail_ifaces(data):
    """fail_control.cpp ifaces_store: words split by ' ', '\\t', '\\n'; per
    word in order: 16 bytes or more (IFNAMSIZ) ENAMETOOLONG, what
    dev_valid_name refuses ('.', '..', '/', ':', NUL) EINVAL, a 17th name
    E2BIG."""
    buf = text_buf(data)
    n = 0
    for w in re.split(rb"[ \t\n]+", buf):
        if not w:
            continue
        if len(w) >= 16:
            return "ENAMETOOLONG"
        if w in (b".", b"..") or any(c in w for c in b"/:\0"):
            return "EINVAL"
        if n == 16:
            return "E2BIG"
        n += 1
    return "OK"


def _fail_ms(data, zero):
    """fail_control.cpp ms_store: kstrtouint base 0 on simple_attr_write's
    23 bytes; 0 is `zero`."""
    v = kstrtouint(cstr(data)[:23], base=0)
    if isinstance(v, str):
        return v
    return zero if v == 0 else "OK"


@with_tree
def _fail_flap_count(data, off, mnt, rel):
    """fail_control.cpp count_store: kstrtouint base 0 on 23 bytes; a count
    other than 0 needs down_ms < period_ms (FaultInjection::start_flaps)."""
    v = kstrtouint(cstr(data)[:23], base=0)
    if isinstance(v, str):
        return v
    if v == 0:
        return "OK"
    d = os.path.dirname(os.path.join(mnt, rel))
    with open(os.path.join(d, "down_ms")) as f:
        down = int(f.read())
    with open(os.path.join(d, "period_ms")) as f:
        period = int(f.read())
    return "OK" if down < period else "EINVAL"


KSTRTO = {"ul0": parse_then(kstrtoull, base=0), "ul10": parse_then(kstrtoull, base=10),
          "uint10": parse_then(kstrtouint, base=10), "int0": parse_then(kstrtoint, base=0),
          "uint0": parse_then(kstrtouint, base=0)}

NET = "devices/*/net/*/"          # every netdev, under pci or virtual
LO = "devices/virtual/net/lo/"
ETH = "devices/pci*/*/net/*/"     # the simulated PCI NICs
VDBG = "kernel/debug/vsysfs/"

ROWS = [
    # --- the driver core ----------------------------------------------------
    # drivers/base/core.c uevent_store, bus.c bus_uevent_store:
    # kobject_synth_uevent; lib/kobject_uevent.c kobject_action_type.
    ("*/uevent", text(synth_uevent), "drivers/base/core.c uevent_store"),
    # drivers/base/bus.c drivers_autoprobe_store: buf[0] == '0' ? 0 : 1.
    ("bus/*/drivers_autoprobe", always("OK"), "drivers/base/bus.c drivers_autoprobe_store"),
    # drivers/base/bus.c drivers_probe_store: bus_find_device_by_name
    # (sysfs_streq on the device name); no corpus input names a device.
    ("bus/*/drivers_probe", always("ENODEV"), "drivers/base/bus.c drivers_probe_store"),
    # drivers/base/power/sysfs.c control_store: sysfs_streq "auto" / "on".
    ("devices/*/power/control",
     text(lambda d: "OK" if sysfs_streq(d, b"auto") or sysfs_streq(d, b"on") else "EINVAL"),
     "drivers/base/power/sysfs.c control_store"),
    # drivers/base/power/sysfs.c autosuspend_delay_ms_store: EIO unless the
    # driver uses autosuspend (none of the modelled devices does).
    ("devices/*/power/autosuspend_delay_ms", always("EIO"),
     "drivers/base/power/sysfs.c autosuspend_delay_ms_store"),
    # drivers/base/platform.c driver_override_store -> driver_set_override.
    ("devices/platform/*/driver_override", text(_driver_override),
     "drivers/base/driver.c driver_set_override"),
    # drivers/base/core.c online_store: kstrtobool, then device_online /
    # device_offline (cpu1..N are hotpluggable; cpu0 has no online file).
    ("devices/system/cpu/cpu*/online", text(lambda d: "EINVAL" if kstrtobool(d) == "EINVAL"
                                            else "OK"), "drivers/base/core.c online_store"),
    # mm/hugetlb.c nr_hugepages_store_common: kstrtoul base 10, then
    # set_max_huge_pages (a short pool is no error, for 2 MiB and 1 GiB pages).
    ("devices/system/node/node*/hugepages/hugepages-*/nr_hugepages", text(KSTRTO["ul10"]),
     "mm/hugetlb.c nr_hugepages_store_common"),
    ("kernel/mm/hugepages/hugepages-*/nr_hugepages*", text(KSTRTO["ul10"]),
     "mm/hugetlb.c nr_hugepages_store_common"),
    # nr_overcommit_hugepages_store (6.12): EINVAL for the gigantic hstate
    # before parsing; else kstrtoul base 10.
    ("kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages", text(KSTRTO["ul10"]),
     "mm/hugetlb.c nr_overcommit_hugepages_store"),
    ("kernel/mm/hugepages/hugepages-1048576kB/nr_overcommit_hugepages", always("EINVAL"),
     "mm/hugetlb.c nr_overcommit_hugepages_store: hstate_is_gigantic"),
    # demote_store: kstrtoul base 10; too few free pages is no error.
    ("*/hugepages-1048576kB/demote", text(KSTRTO["ul10"]), "mm/hugetlb.c demote_store"),
    # demote_size_store: memparse, then only an hstate's size of at least
    # HUGETLB_PAGE_ORDER below 1 GiB: 2 MiB.
    ("*/hugepages-1048576kB/demote_size",
     text(lambda d: "OK" if memparse(d) == 2 << 20 else "EINVAL"),
     "mm/hugetlb.c demote_size_store"),

    # drivers/base/memory.c: mhp_online_type_from_str (sysfs_streq); state_store
    # of the state a block is already in is EINVAL, an offline whose pages are
    # in use EBUSY; online_store (drivers/base/core.c) takes an unchanged value.
    ("devices/system/memory/auto_online_blocks", text(lambda d: "OK" if _online_type(d) else "EINVAL"),
     "drivers/base/memory.c auto_online_blocks_store"),
    ("devices/system/memory/memory*/state",
     text(lambda d: "OK|EINVAL|EBUSY" if _online_type(d) else "EINVAL"),
     "drivers/base/memory.c state_store"),
    ("devices/system/memory/memory*/online",
     text(lambda d: "EINVAL" if kstrtobool(d) == "EINVAL" else "OK|EBUSY"),
     "drivers/base/core.c online_store; drivers/base/memory.c memory_subsys_offline"),

    # --- PCI ------------------------------------------------------------------
    # drivers/pci/pci-sysfs.c enable_store: kstrtobool, then EBUSY while a
    # driver is bound (every simulated function has one).
    ("devices/pci*/*/enable", text(lambda d: "EINVAL" if kstrtobool(d) == "EINVAL" else "EBUSY"),
     "drivers/pci/pci-sysfs.c enable_store"),
    # drivers/pci/pci-sysfs.c pci_write_config: bin attribute of the config
    # size; writes past cfg_size trimmed; always returns the count.
    ("devices/pci*/*/config", bin_sized(256), "drivers/pci/pci-sysfs.c pci_write_config"),
    ("devices/pci*/*/numa_node", with_tree(_pci_numa_node), "drivers/pci/pci-sysfs.c numa_node_store"),
    # pci_create_attr: a memory BAR's resourceN has only mmap, so a write of
    # bytes is EIO (sysfs_kf_bin_write without battr->write); an empty one
    # returns 0 first. The shipped machines' BAR0s are at least 128 KiB; an
    # I350's BAR3 is 16 KiB.
    ("devices/pci*/*/resource[0-9]", bin_sized(0x20000, lambda d, off: "OK" if not d else "EIO"),
     "drivers/pci/pci-sysfs.c pci_create_attr; fs/sysfs/file.c sysfs_kf_bin_write"),
    # (the last matching row wins)
    ("devices/pci*/*/resource3", bin_sized(0x4000, lambda d, off: "OK" if not d else "EIO"),
     "drivers/pci/pci-sysfs.c pci_create_attr; fs/sysfs/file.c sysfs_kf_bin_write"),

    # --- netdev (ref 5.1, 5.2; net/core/net-sysfs.c) -----------------------------
    # netdev_store: kstrtoul(buf, 0), then the setter under RTNL.
    # mtu: dev_set_mtu((int)val): below min_mtu (68 for the NICs) EINVAL.
    (NET + "mtu", text(parse_then(kstrtoull, lambda v: "EINVAL" if v < 68 else "OK")),
     "net-sysfs.c change_mtu; net/core/dev.c dev_validate_mtu"),
    # loopback: gen_lo_setup leaves min_mtu 0 and max_mtu 0 (no bound).
    (LO + "mtu", text(KSTRTO["ul0"]), "drivers/net/loopback.c gen_lo_setup; dev_validate_mtu"),
    # flags: dev_change_flags; value 1 (IFF_UP) keeps the device up.
    (NET + "flags", text(KSTRTO["ul0"]), "net-sysfs.c change_flags"),
    # tx_queue_len: > UINT_MAX ERANGE, else dev_change_tx_queue_len.
    (NET + "tx_queue_len", text(parse_then(kstrtoull, lambda v: "ERANGE" if v > 0xFFFFFFFF
                                           else "OK")), "net-sysfs.c change_tx_queue_len"),
    (NET + "gro_flush_timeout", text(KSTRTO["ul0"]), "net-sysfs.c change_gro_flush_timeout"),
    (NET + "napi_defer_hard_irqs",
     text(parse_then(kstrtoull, lambda v: "ERANGE" if v > 0x7FFFFFFF else "OK")),
     "net-sysfs.c change_napi_defer_hard_irqs"),
    (NET + "netdev_group", text(KSTRTO["ul0"]), "net-sysfs.c change_group"),
    # carrier_store: no ndo_change_carrier -> EOPNOTSUPP before parsing
    # (5.16+, commit 146e5e733310 "net-sysfs: try not to restart the syscall
    # if it will fail eventually"); else kstrtoul; then !netif_running ->
    # EINVAL, dev_change_carrier. Whether a NIC has ndo_change_carrier is
    # its driver's (the machine's change_carrier key): either answer.
    (NET + "carrier", text(lambda d: (lambda v: v + "|EOPNOTSUPP" if isinstance(v, str)
                                      else "OK|EINVAL|EOPNOTSUPP")(kstrtoull(d))),
     "net-sysfs.c carrier_store"),
    (LO + "carrier", always("EOPNOTSUPP"), "net-sysfs.c carrier_store; loopback has no "
                                           "ndo_change_carrier"),
    # proto_down: netdev_store then dev_change_proto_down: !change_proto_down
    # -> EOPNOTSUPP (the NIC's driver decides; loopback never sets it).
    (NET + "proto_down", text(parse_then(kstrtoull, lambda v: "OK|EOPNOTSUPP")),
     "net-sysfs.c change_proto_down; net/core/dev.c dev_change_proto_down"),
    (LO + "proto_down", text(parse_then(kstrtoull, lambda v: "EOPNOTSUPP")),
     "net/core/dev.c dev_change_proto_down"),
    # threaded: modify_napi_threaded: no NAPI (loopback) EOPNOTSUPP; a value
    # other than 0/1 EOPNOTSUPP; else dev_set_threaded.
    (NET + "threaded", text(parse_then(kstrtoull, lambda v: "OK" if v in (0, 1)
                                       else "EOPNOTSUPP")), "net-sysfs.c modify_napi_threaded"),
    (LO + "threaded", text(parse_then(kstrtoull, lambda v: "EOPNOTSUPP")),
     "net-sysfs.c modify_napi_threaded (list_empty(&dev->napi_list))"),
    (NET + "ifalias", text(_ifalias), "net-sysfs.c ifalias_store; net/core/dev.c dev_set_alias"),
    # queues (net-sysfs.c): rps_cpus store_rps_map -> bitmap_parse, a
    # non-empty mask of online housekeeping CPUs (CPU 0 is) accepted.
    (NET + "queues/rx-*/rps_cpus", text(_rps), "net-sysfs.c store_rps_map; lib/bitmap-str.c"),
    (NET + "queues/rx-*/rps_flow_cnt", text(KSTRTO["ul0"]),
     "net-sysfs.c store_rps_dev_flow_table_cnt"),
    # tx_maxrate_store: no ndo_set_tx_maxrate -> EOPNOTSUPP before parsing;
    # neither loopback nor the simulated NIC has one.
    (NET + "queues/tx-*/tx_maxrate", always("EOPNOTSUPP"), "net-sysfs.c tx_maxrate_store"),
    # xps_cpus_store: !netif_is_multiqueue (one TX queue: one tx-N
    # directory) -> ENOENT before anything else; else bitmap_parse and
    # netif_set_xps_queue.
    (NET + "queues/tx-*/xps_cpus", with_tree(_xps), "net-sysfs.c xps_cpus_store"),
    (NET + "queues/tx-*/byte_queue_limits/hold_time", text(KSTRTO["uint10"]),
     "net-sysfs.c bql_set_hold_time"),
    (NET + "queues/tx-*/byte_queue_limits/limit*", text(_bql_set), "net-sysfs.c bql_set"),

    # --- dcdbas (ref 2) -------------------------------------------------------------
    ("devices/platform/dcdbas/smi_data", _dcdbas_smi_data, "dcdbas.c smi_data_write"),
    ("devices/platform/dcdbas/smi_data_buf_size",
     text(lambda d: _dcdbas_buf_size(simple_strtoull(d, 10))),
     "dcdbas.c smi_data_buf_size_store, smi_data_buf_realloc; ref 2.1, 2.2"),
    ("devices/platform/dcdbas/smi_request", text(lambda d: _smi_request(simple_strtoull(d, 10))),
     "dcdbas.c smi_request_store; ref 2.1, 2.3"),
    # host_control_*: simple_strtoul, no validation; host_control_action
    # first grows the buffer to 198 bytes (always possible).
    ("devices/platform/dcdbas/host_control_*", always("OK"), "dcdbas.c host_control_*_store; "
                                                            "ref 2.1"),

    # --- Xen balloon (ref 3.2, 3.3; drivers/xen/xen-balloon.c) ------------------------
    # target_kb: simple_strtoull(buf, 0) * 1024; target: memparse. Never fail.
    ("devices/system/xen_memory/xen_memory*/target_kb", always("OK"), "xen-balloon.c "
                                                                      "target_kb_store"),
    ("devices/system/xen_memory/xen_memory*/target", always("OK"), "xen-balloon.c target_store"),
    # DEVICE_ULONG_ATTR: device_store_ulong = kstrtoul(buf, 0) (ref 1.4).
    ("devices/system/xen_memory/xen_memory*/max_*", text(KSTRTO["ul0"]),
     "drivers/base/core.c device_store_ulong"),
    # DEVICE_BOOL_ATTR: device_store_bool = kstrtobool, any error EINVAL.
    ("devices/system/xen_memory/xen_memory*/scrub_pages",
     text(lambda d: "EINVAL" if kstrtobool(d) == "EINVAL" else "OK"),
     "drivers/base/core.c device_store_bool"),

    # --- control plane (ours: each knob's header comment is the spec) ---------------
    # devices/machine/sim_control.hpp
    (VDBG + "clock/advance_ms", text(KSTRTO["ul0"]), "sim_control.hpp: kstrtoull base 0"),
    (VDBG + "events_clear", always("OK"), "sim_control.hpp: any write empties the log"),
    (VDBG + "machine/shutdown",
     text(lambda d: "OK" if any(sysfs_streq(d, w) for w in (b"poweroff", b"halt", b"reboot"))
          else "EINVAL"), "sim_control.hpp: poweroff|halt|reboot"),
    # "on" boots an off machine; the sweep's machine is always on (a
    # shutdown is DESTRUCTIVE below: the machine is remounted), so EBUSY.
    (VDBG + "machine/power",
     text(lambda d: "EBUSY" if sysfs_streq(d, b"on") else "EINVAL"), "sim_control.hpp: power on"),
    # devices/dell/dcdbas.cpp DcdbasDebug: cmos, bin of 64 KiB
    (VDBG + "dcdbas/cmos", bin_sized(65536), "dcdbas.cpp: cmos 0600, 64 KiB"),
    # smi_answers: lines of "add CLASS SELECT ...", "del N" or "clear"
    # (docs/devices/dell.md); no corpus input is one (all EINVAL).
    (VDBG + "dcdbas/smi_answers", always("EINVAL"), "dcdbas.cpp: smi_answers lines"),
    # devices/net/netdev_knobs.hpp: link up|down, ordering flush|posted, faults
    # "NAME VALUE", traffic "count N size S rate R [cpus C]"|start|stop;
    # "Bad input is EINVAL and changes nothing".
    (VDBG + "net/*/link",
     text(lambda d: "OK" if sysfs_streq(d, b"up") or sysfs_streq(d, b"down") else "EINVAL"),
     "netdev_knobs.hpp link"),
    (VDBG + "net/*/ordering",
     text(lambda d: "OK" if sysfs_streq(d, b"flush") or sysfs_streq(d, b"posted") else "EINVAL"),
     "netdev_knobs.hpp ordering"),
    (VDBG + "net/*/faults", always("EINVAL"), "netdev_knobs.hpp faults (no corpus input is a "
                                              "fault name and value)"),
    (VDBG + "net/*/traffic", always("EINVAL"), "netdev_knobs.hpp traffic (no corpus input is "
                                               "a command)"),
    # devices/machine/fail_control.hpp: net_xmit/kind busy|drop|hang;
    # net_xmit/ifaces a blank-separated list of interface names.
    (VDBG + "fail/net_xmit/kind",
     text(lambda d: "OK" if any(sysfs_streq(d, k) for k in (b"busy", b"drop", b"hang"))
          else "EINVAL"), "fail_control.hpp net_xmit kind"),
    (VDBG + "fail/net_xmit/ifaces", text(_fail_ifaces), "fail_control.hpp net_xmit ifaces"),
    # net_open/errno: kstrtoint base 0, 1..MAX_ERRNO (4095); ifaces as above.
    (VDBG + "fail/net_open/errno",
     text(parse_then(kstrtoint, lambda v: "OK" if 1 <= v <= 4095 else "EINVAL", base=0)),
     "fail_control.hpp net_open errno"),
    (VDBG + "fail/net_open/ifaces", text(_fail_ifaces), "fail_control.hpp net_open ifaces"),
    # xen_populate/pages: simple_attr_write-like, kstrtoull base 0 on 23 bytes.
    (VDBG + "fail/xen_populate/pages",
     text(lambda d: "OK" if not isinstance(kstrtoull(cstr(d)[:23], base=0), str) else
          kstrtoull(cstr(d)[:23], base=0)), "fail_control.hpp xen_populate pages"),
    # net_rx/kind drop|corrupt; net_rx/ifaces, link_flap/ifaces as net_xmit's.
    (VDBG + "fail/net_rx/kind",
     text(lambda d: "OK" if any(sysfs_streq(d, k) for k in (b"drop", b"corrupt"))
          else "EINVAL"), "fail_control.hpp net_rx kind"),
    (VDBG + "fail/net_rx/ifaces", text(_fail_ifaces), "fail_control.hpp net_rx ifaces"),
    (VDBG + "fail/link_flap/ifaces", text(_fail_ifaces), "fail_control.hpp link_flap ifaces"),
    # link_flap/down_ms, period_ms: kstrtouint base 0 on 23 bytes, 0 EINVAL;
    # store|show/delay_ms: the same, 0 allowed.
    (VDBG + "fail/link_flap/*_ms",
     text(lambda d: _fail_ms(d, zero="EINVAL")), "fail_control.hpp link_flap down_ms period_ms"),
    (VDBG + "fail/*/delay_ms", text(lambda d: _fail_ms(d, zero="OK")),
     "fail_control.hpp store/show delay_ms"),
    # link_flap/count: kstrtouint base 0 on 23 bytes; a count other than 0
    # starts a schedule, EINVAL unless down_ms < period_ms (read from the mount).
    (VDBG + "fail/link_flap/count", with_tree(_fail_flap_count), "fail_control.hpp link_flap count"),
    # devices/numa/numa_debug.hpp: alloc needs pages=N; free: kstrtoull base 10,
    # junk EINVAL, an id that is not live ENOENT.
    (VDBG + "numa/alloc", always("EINVAL"), "numa_debug.hpp alloc (pages= is required)"),
    (VDBG + "numa/free", text(lambda d: "EINVAL" if isinstance(kstrtoull(d, 10), str)
                              else "ENOENT"), "numa_debug.hpp free"),
    # devices/xen/xen_balloon_hypervisor.hpp, xen_balloon.hpp: KiB, kstrtoull
    # base 0 (1 KiB is 0 pages).
    (VDBG + "xen/host_total_kb", text(parse_then(kstrtoull, lambda v: "EINVAL")),
     "xen_balloon_hypervisor.hpp: below the domains' sum EINVAL"),
    (VDBG + "xen/host_free_kb", text(KSTRTO["ul0"]), "xen_balloon_hypervisor.hpp"),
    (VDBG + "xen/populate_fail", text(KSTRTO["ul0"]), "xen_balloon_hypervisor.hpp"),
    (VDBG + "xen/domain/*/target_kb", text(KSTRTO["ul0"]), "xen_balloon_hypervisor.hpp"),
    (VDBG + "xen/domain/*/current_kb", text(KSTRTO["ul0"]), "xen_balloon_hypervisor.hpp"),
    (VDBG + "xen/domain/*/pace", text(parse_then(kstrtoull, lambda v: "OK" if v >= 1
                                                 else "EINVAL")),
     "xen_balloon_hypervisor.hpp: pace >= 1"),
    (VDBG + "xen/guest/used_kb", text(KSTRTO["ul0"]), "xen_balloon.hpp used_kb"),
    # devices/xen/xen_xenstore.hpp: "PATH VALUE" lines, PATH starting with '/',
    # printable ASCII only; no corpus input is one (all EINVAL).
    (VDBG + "xen/xenstore", always("EINVAL"), "xen_xenstore.hpp: PATH VALUE lines"),

    # devices/machine/snapshot.hpp (docs/snapshot.md): a NAME is 1..64 bytes
    # of [A-Za-z0-9._-], not ".", ".." or "now"; one trailing newline is
    # dropped. snapshot takes it (ENOSPC past 16: the sweep remounts after
    # each accepted one, see DESTRUCTIVE); restore of a good name that no
    # snapshot has is ENOENT; diff wants exactly two blank-separated names,
    # each "now" or a snapshot (ENOENT otherwise).
    (VDBG + "machine/snapshot", text(lambda d: _snapshot_name(text_buf(d)) or "OK"),
     "snapshot.hpp: snapshot NAME"),
    (VDBG + "machine/restore", text(lambda d: _snapshot_name(text_buf(d)) or "ENOENT"),
     "snapshot.hpp: restore NAME"),
    (VDBG + "machine/diff", text(lambda d: _snapshot_diff(text_buf(d))), "snapshot.hpp: diff A B"),

    # --- the test device (tests/testdev/test_device.hpp) ------------------------------
    ("devices/virtual/vsysfs_test/*/value", text(KSTRTO["int0"]), "test_device.hpp: kstrtoint"),
    ("devices/virtual/vsysfs_test/*/secret", text(KSTRTO["int0"]), "test_device.hpp: kstrtoint"),
    ("devices/virtual/vsysfs_test/*/wo", always("OK"), "test_device.hpp: stores are logged"),
    ("devices/virtual/vsysfs_test/*/sink", always("OK"), "test_device.hpp: records the length"),
    ("devices/virtual/vsysfs_test/*/blob", bin_sized(64), "test_device.hpp: bin, size 64"),
    # stream: bin size 0, an 8 KiB store: ENOSPC at or past its end
    ("devices/virtual/vsysfs_test/*/stream", lambda d, off: "ENOSPC" if off >= 8192 else "OK",
     "test_device.hpp: stream"),
    (VDBG + "testdev/set", text(KSTRTO["int0"]), "test_device.hpp: set INT"),
    (VDBG + "testdev/timer_ms", text(KSTRTO["uint0"]), "test_device.hpp: timer_ms N"),
    (VDBG + "testdev/hotplug", always("EINVAL"), "test_device.hpp: add NAME | remove NAME"),
    # notify NAME: an attribute of testdev0 (strim'd); no corpus input names one
    (VDBG + "testdev/notify", always("ENOENT"), "test_device.hpp: notify NAME"),
]

# Refused writes with a documented side effect in the kernel itself: the
# sweep accepts exactly these changes for exactly these errnos, and counts
# them as "quirks". (file pattern, errno, changed-path patterns, why)
ALLOWED_CHANGES = [
    ("devices/platform/dcdbas/smi_request", "EBADR", ["devices/platform/dcdbas/smi_data"],
     "Kernel quirk: smi_request_store case 1 writes smi_cmd->ebx (the buffer's physical "
     "address + 16) before dcdbas_smi_request checks the magic (dcdbas.c; ref 2.3)"),
]

# Files whose content changes by itself (or because it was read), so that a
# change there says nothing about the write under test. Paths relative to the
# mount root; fnmatch patterns. Keep each entry explained.
EXCLUDED_FROM_STATE = [
    # simulated time: moves on its own with -o clock=real
    "kernel/debug/vsysfs/clock/now_ns",
    # the event log records every store, refused ones included (by design)
    "kernel/debug/vsysfs/events",
    # its stream: a read waits for the next event (trace_pipe-like), so a
    # snapshot must not read it at all
    "kernel/debug/vsysfs/events_pipe",
    # the link_flap periods left: a schedule counts down on its own as
    # (simulated) time passes, with -o clock=real
    "kernel/debug/vsysfs/fail/link_flap/count",
    # the serving daemon's pid: another on every mount (replays are fresh mounts)
    "kernel/debug/vsysfs/pid",
    # testdev: counts show() calls, so every snapshot read changes it
    "devices/virtual/vsysfs_test/*/shows",
    "devices/virtual/vsysfs_test/*/stats/count",
]

# Writes that reshape or stop the machine when accepted: after an accepted
# write to one of these the machine is remounted from scratch, so later
# inputs start from a known state. (The corpus holds no valid command for
# them, so in practice they only refuse; the rule is the safety net.)
DESTRUCTIVE = [
    "kernel/debug/vsysfs/machine/shutdown",   # powers the machine off
    "kernel/debug/vsysfs/*/hotplug",           # device_add / device_del
    # arms a failure point (docs/fault-injection.md): from then on stores,
    # shows, SMIs or allocations fail by design, so every later input
    # would be judged against a machine that fails on purpose
    "kernel/debug/vsysfs/fail/*/probability",
    # take and bring back whole-machine snapshots (docs/snapshot.md): an
    # accepted one adds a snapshot the next inputs would find
    "kernel/debug/vsysfs/machine/snapshot",
    "kernel/debug/vsysfs/machine/restore",
]


def _snapshot_check(name):
    """devices/machine/snapshot.cpp check_name: None when valid, else the errno."""
    if not name:
        return "EINVAL"
    if len(name) > 64:
        return "ENAMETOOLONG"
    if name in (b"now", b".", b".."):
        return "EINVAL"
    if any(not (chr(c).isascii() and (chr(c).isalnum() or chr(c) in "._-")) for c in name):
        return "EINVAL"
    return None


def _snapshot_name(buf):
    """A snapshot/restore write: one trailing newline dropped, then the name."""
    return _snapshot_check(buf[:-1] if buf.endswith(b"\n") else buf)


def _snapshot_diff(buf):
    names = re.split(rb"[ \t\n]+", buf.strip(b" \t\n")) if buf.strip(b" \t\n") else []
    if len(names) != 2:
        return "EINVAL"
    for n in names:
        if n != b"now":
            err = _snapshot_check(n)
            if err:
                return err
    return "OK" if names == [b"now", b"now"] else "ENOENT"


def expected_for(rel, label, data=None, off=0, mnt=None):
    """The kernel's outcome for writing `data` at `off` to `rel` (mounted at
    `mnt`), or None when no row knows the file. A zero-length write never
    reaches store() (ref 1.4), whatever the file."""
    if data is not None and len(data) == 0:
        return "OK"
    rule = None
    for pat, fn, _ in ROWS:
        if fnmatch.fnmatchcase(rel, pat):
            rule = fn
    if rule is None or data is None:
        return None
    if getattr(rule, "wants_tree", False):
        return rule(data, off, mnt, rel) if mnt else None
    return rule(data, off)


def allowed_change(rel, errno_name, changed):
    for pat, err, paths, why in ALLOWED_CHANGES:
        if fnmatch.fnmatchcase(rel, pat) and err == errno_name and all(
                any(fnmatch.fnmatchcase(c, p) for p in paths) for c in changed):
            return why
    return None


def quirky(rel):
    """Refused writes to this file may change the machine (ALLOWED_CHANGES)."""
    return any(fnmatch.fnmatchcase(rel, pat) for pat, _, _, _ in ALLOWED_CHANGES)


def destructive(rel):
    return any(fnmatch.fnmatchcase(rel, p) for p in DESTRUCTIVE)
