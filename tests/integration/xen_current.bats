#!/usr/bin/env bats
# The current (5.15+) Xen guest through a real mount: /sys/hypervisor as
# drivers/xen/sys-hypervisor.c makes it, virt-what recognising the tree,
# and the balloon kthread's behaviour (a new target during a back-off is
# acted on at once; scrub_pages; xen.balloon_boot_timeout).

load helpers

setup() {
  WORK=$(mktemp -d "${BATS_TMPDIR:-/tmp}/xen-current.XXXXXX")
}

teardown() {
  vsysfs_stop
  rm -rf "$WORK"
}

# A virt-what test root around a sysfs tree $1: DIR/sys is the tree; the
# programs virt-what runs besides reading files stand for a guest whose
# CPUID has no hypervisor leaf and that has no SMBIOS (a Xen PV guest), so
# the answer can only come from DIR/sys. proc/cpuinfo has no hypervisor
# flag and no QEMU.
make_root() {
  local root=$WORK/root
  rm -rf "$root"
  mkdir -p "$root/proc" "$root/usr/libexec" "$root/sbin"
  ln -s "$1" "$root/sys"
  printf 'processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU\nflags\t\t: fpu vme de pse tsc msr pae\n\n' \
    > "$root/proc/cpuinfo"
  printf '#!/bin/sh\nexit 0\n' > "$root/usr/libexec/virt-what-cpuid-helper"
  printf '#!/bin/sh\necho "# dmidecode 3.4"\necho "# No SMBIOS nor DMI entry point found, sorry."\n' \
    > "$root/sbin/dmidecode"
  chmod +x "$root/usr/libexec/virt-what-cpuid-helper" "$root/sbin/dmidecode"
  echo "$root"
}

@test "/sys/hypervisor: the files and values of a Xen 4.17 HVM domU" {
  vsysfs_start -o "machine=$VSYSFS_ROOT/machines/xen-guest-vnuma.toml"
  H=$MNT/hypervisor
  [ "$(cat "$H/type")" = xen ]
  [ "$(cat "$H/guest_type")" = HVM ]
  [ "$(cat "$H/version/major").$(cat "$H/version/minor")$(cat "$H/version/extra")" = 4.17.3 ]
  [ "$(cat "$H/properties/pagesize")" = 1000 ]
  [ "$(cat "$H/properties/features")" = 00012705 ]
  [ "$(cat "$H/properties/virtual_start")" = 0 ]
  [ "$(cat "$H/properties/buildid")" = "<denied>" ]
  [[ "$(cat "$H/uuid")" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]]
  [ "$(cat "$H/compilation/compiled_by")" = pkg-xen-devel ]
  [ "$(find "$H/start_flags" -mindepth 1 -maxdepth 1 | wc -l)" = 32 ]
  [ "$(cat "$H/start_flags/initdomain")" = 0 ]
  # shellcheck disable=SC2012 # the names are fixed and plain: ls gives them sorted
  [ "$(ls "$H" | tr '\n' ' ')" = "compilation guest_type properties start_flags type uuid version " ]
  [ "$(find "$H" -type f ! -perm 0444 | wc -l)" = 0 ]
  [ "$(errno_of_write "$H/type" kvm)" = EACCES ]
}

@test "/sys/hypervisor: the default machine is a PV dom0 (hardware domain, null handle)" {
  vsysfs_start
  H=$MNT/hypervisor
  [ "$(cat "$H/type")" = xen ]
  [ "$(cat "$H/guest_type")" = PV ]
  [ "$(cat "$H/uuid")" = 00000000-0000-0000-0000-000000000000 ]
  [ "$(cat "$H/start_flags/privileged")" = 1 ]
  [ "$(cat "$H/start_flags/initdomain")" = 1 ]
  # XENFEAT_dom0 beside the PV bits; a PV kernel's HYPERVISOR_VIRT_START.
  [ "$(cat "$H/properties/features")" = 000228e0 ]
  [ "$(cat "$H/properties/virtual_start")" = ffff800000000000 ]
  # XSM lets the hardware domain read the build id: raw bytes, no newline.
  [ "$(od -An -tx1 "$H/properties/buildid" | tr -d ' \n')" = 9b1c4f2e7a30d58c6e21f0b4a7d93c5e18f26a04 ]
  # dom0 is Domain-0 to the toolstack; the other domains are its guests.
  [ "$(awk '$1 == 0 { print $2 }' "$MNT/kernel/debug/vsysfs/xen/domains")" = Domain-0 ]
  # A PV kernel disables cpuidle (xen_arch_setup) and runs with numa_off:
  # one node holding every CPU.
  [ ! -e "$MNT/devices/system/cpu/cpuidle" ]
  [ "$(cat "$MNT/devices/system/node/online")" = 0 ]
  [ "$(cat "$MNT/devices/system/node/node0/cpulist")" = "$(cat "$MNT/devices/system/cpu/online")" ]
  [ "$(cat "$MNT/devices/system/node/node0/distance")" = 10 ]
  # The host's own SMBIOS: dom0 sees Dell's tables.
  [ "$(cat "$MNT/devices/virtual/dmi/id/sys_vendor")" = "Dell Inc." ]
}

@test "/sys/hypervisor/pmu: dom0 only; EOPNOTSUPP under Xen's vpmu=off; modes and features with vpmu on" {
  # drivers/xen/sys-hypervisor.c: pmu/ only if xen_initial_domain().
  vsysfs_start -o "machine=$VSYSFS_ROOT/machines/xen-guest-vnuma.toml"
  [ ! -e "$MNT/hypervisor/pmu" ]
  vsysfs_stop
  # The default machine's dom0 on a Xen booted without vpmu=.
  vsysfs_start
  P=$MNT/hypervisor/pmu
  [ "$(stat -c %a "$P/pmu_mode") $(stat -c %a "$P/pmu_features")" = "644 644" ]
  run cat "$P/pmu_mode"
  [ "$status" -ne 0 ]
  [[ "$output" == *"Operation not supported"* ]]
  [ "$(errno_of_write "$P/pmu_mode" self)" = EOPNOTSUPP ]
  [ "$(errno_of_write "$P/pmu_mode" bogus)" = EINVAL ]
  vsysfs_stop
  # The same dom0 with vpmu=bts.
  sed 's/^\[xen.hypervisor\]$/[xen.hypervisor]\nvpmu = "bts"/' "$VSYSFS_ROOT/machines/default.toml" > "$WORK/vpmu.toml"
  grep -q '^vpmu = "bts"' "$WORK/vpmu.toml"
  vsysfs_start -o "machine=$WORK/vpmu.toml"
  P=$MNT/hypervisor/pmu
  [ "$(cat "$P/pmu_mode")" = self ]
  [ "$(cat "$P/pmu_features")" = 0x1 ]
  echo hv > "$P/pmu_mode"
  [ "$(cat "$P/pmu_mode")" = hv ]
  [ "$(errno_of_write "$P/pmu_mode" sideways)" = EINVAL ]
  [ "$(cat "$P/pmu_mode")" = hv ]
  echo 0x4 > "$P/pmu_features"
  [ "$(cat "$P/pmu_features")" = 0x4 ]
  [ "$(errno_of_write "$P/pmu_features" 0x8)" = EINVAL ]
  [ "$(errno_of_write "$P/pmu_features" junk)" = EINVAL ]
  [ "$(cat "$P/pmu_features")" = 0x4 ]
  # 0644: only root writes.
  run setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo all > '$P/pmu_mode'"
  [ "$status" -ne 0 ]
  [ "$(cat "$P/pmu_mode")" = hv ]
}

@test "virt-what on the tree says xen, and nothing without [xen]" {
  command -v virt-what >/dev/null || skip "virt-what not installed (mount-scripts/install-deps)"
  vsysfs_start
  root=$(make_root "$MNT")
  run virt-what --test-root="$root"
  [ "$status" -eq 0 ]
  [ "$output" = xen ]
  vsysfs_stop
  # The same root around a machine with no [xen]: no /sys/hypervisor.
  printf '[machine]\nname = "no xen"\n' > "$WORK/bare.toml"
  vsysfs_start -o "machine=$WORK/bare.toml"
  [ ! -e "$MNT/hypervisor/type" ]
  root=$(make_root "$MNT")
  run virt-what --test-root="$root"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
}

@test "balloon kthread: a new target during a back-off is acted on at once" {
  vsysfs_start -o "clock=manual,machine=$VSYSFS_ROOT/machines/xen-host-3dom.toml"
  DEV=$MNT/devices/system/xen_memory/xen_memory0
  XEN=$(ctl xen)
  [ "$(cat "$XEN/guest/driver")" = kthread ]
  echo 0 > "$XEN/host_free_kb"
  echo 6291456 > "$DEV/target_kb"
  echo 0 > "$(ctl clock/advance_ms)"
  [ "$(cat "$XEN/guest/state")" = EAGAIN ]       # next try in 2 s
  echo 500 > "$(ctl clock/advance_ms)"
  echo 3145728 > "$DEV/target_kb"                # give 1 GiB back instead
  echo 0 > "$(ctl clock/advance_ms)"
  [ "$(cat "$DEV/info/current_kb")" = 3145728 ]  # at t=0.5 s, not at the retry
  [ "$(cat "$XEN/guest/state")" = DONE ]
  events_matching step xen_balloon | grep -q '"direction":"decrease"'
}

@test "scrub_pages, max_retry_count 4 and xen.balloon_boot_timeout on the default machine" {
  vsysfs_start
  DEV=$MNT/devices/system/xen_memory/xen_memory0
  [ "$(stat -c %a "$DEV/scrub_pages")" = 644 ]
  [ "$(cat "$DEV/scrub_pages")" = 1 ]
  echo n > "$DEV/scrub_pages"
  [ "$(cat "$DEV/scrub_pages")" = 0 ]
  [ "$(errno_of_write "$DEV/scrub_pages" maybe)" = EINVAL ]
  [ "$(cat "$DEV/scrub_pages")" = 0 ]
  [ "$(cat "$DEV/max_retry_count")" = 4 ]
  P=$MNT/module/xen/parameters/balloon_boot_timeout
  [ "$(stat -c %a "$P")" = 444 ]
  [ "$(cat "$P")" = 180 ]
  [ ! -e "$DEV/boot_timeout" ]
}

@test "[xen] driver = \"workqueue\" selects the 2.6.39-5.14 worker" {
  sed 's/^\[xen\]$/[xen]\ndriver = "workqueue"/' "$VSYSFS_ROOT/machines/xen-host-3dom.toml" > "$WORK/wq.toml"
  vsysfs_start -o "clock=manual,machine=$WORK/wq.toml"
  DEV=$MNT/devices/system/xen_memory/xen_memory0
  XEN=$(ctl xen)
  [ "$(cat "$XEN/guest/driver")" = workqueue ]
  [ ! -e "$MNT/module/xen" ]
  [ "$(cat "$MNT/hypervisor/type")" = xen ]
  echo 0 > "$XEN/host_free_kb"
  echo 6291456 > "$DEV/target_kb"
  echo 500 > "$(ctl clock/advance_ms)"
  echo 3145728 > "$DEV/target_kb"
  echo 0 > "$(ctl clock/advance_ms)"
  # schedule_delayed_work on the pending retry: nothing until t=2 s.
  [ "$(cat "$DEV/info/current_kb")" = 4194304 ]
  echo 1500 > "$(ctl clock/advance_ms)"
  [ "$(cat "$DEV/info/current_kb")" = 3145728 ]
}
