#!/usr/bin/env bats
# make install / make uninstall (docs/install.md): into a DESTDIR, every file
# listed; every user script of mount-scripts/ installed with its man page;
# the installed tools mount, read and unmount; uninstall leaves nothing.

load helpers

setup_file() {
  command -v make >/dev/null || skip "no make"
  DEST=$(mktemp -d /tmp/vsysfs-install.XXXXXX)
  export DEST
  # -o: the daemon is already built (the suites run against $VSYSFS_BUILD);
  # never rebuild it here, whatever the flags of that build were.
  make -s -C "$VSYSFS_ROOT" -o "$VSYSFS_BUILD/vsysfs" install BUILD="$VSYSFS_BUILD" \
    PREFIX=/usr DESTDIR="$DEST" >/dev/null
}

teardown_file() {
  [ -n "${DEST:-}" ] && rm -rf "$DEST"
  true
}

teardown() { vsysfs_stop; }

# What should be installed, from the source tree (not from the Makefile):
# executables of mount-scripts/ (but the build helper install-deps), the
# mount helpers in sbin, the files of lib/ (libraries users source) in
# share/vsysfs/lib, every machine, every man page.
expected_files() {
  echo usr/bin/vsysfs
  local f name
  for f in "$VSYSFS_ROOT"/mount-scripts/*; do
    name=${f##*/}
    [ "$name" = install-deps ] && continue
    if [[ "$name" == mount.* ]]; then echo "usr/sbin/$name"
    else echo "usr/bin/$name"; fi
  done
  for f in "$VSYSFS_ROOT"/lib/*; do echo "usr/share/vsysfs/lib/${f##*/}"; done
  for f in "$VSYSFS_ROOT"/machines/*.toml; do echo "usr/share/vsysfs/machines/${f##*/}"; done
  for f in "$VSYSFS_ROOT"/man/*.[1-8]; do echo "usr/share/man/man${f##*.}/${f##*/}"; done
}

@test "make install puts exactly the daemon, every user script, the machines and the man pages" {
  diff <(expected_files | sort) <(cd "$DEST" && find . -type f | sed 's|^\./||' | sort)
  # Modes: programs 0755, data 0644.
  [ "$(stat -c %a "$DEST/usr/bin/vsysfs")" = 755 ]
  [ "$(stat -c %a "$DEST/usr/sbin/mount.fuse.vsysfs")" = 755 ]
  [ "$(stat -c %a "$DEST/usr/share/vsysfs/machines/default.toml")" = 644 ]
  [ "$(stat -c %a "$DEST/usr/share/man/man8/vsysfs.8")" = 644 ]
  # make install-list names the same files.
  diff <(expected_files | sed 's|^|/|' | sort) \
    <(make -s -C "$VSYSFS_ROOT" install-list PREFIX=/usr | sort)
}

@test "every installed program has a man page, and every page is groff -man -ww clean" {
  for p in "$DEST"/usr/bin/* "$DEST"/usr/sbin/*; do
    name=${p##*/}
    ls "$DEST"/usr/share/man/man[18]/"$name".[18] >/dev/null
  done
  [ -f "$DEST/usr/share/man/man5/vsysfs-machine.5" ]
  command -v groff >/dev/null || skip "no groff"
  for m in "$DEST"/usr/share/man/man*/*; do
    out=$(groff -man -Tutf8 -ww "$m" 2>&1 >/dev/null)
    [ -z "$out" ] || { echo "$m: $out"; false; }
  done
}

@test "the installed tools mount the installed default machine, read it, run a script and unmount" {
  export PATH="$DEST/usr/bin:$PATH"
  MNT=$(mktemp -d /tmp/vsysfs-install-mnt.XXXXXX)
  # vsysfs-mount finds no build/ beside an installed copy: vsysfs on PATH.
  VSYSFS_PID=$(env -u VSYSFS "$DEST/usr/bin/vsysfs-mount" "$MNT" -- \
    -o machine="$DEST/usr/share/vsysfs/machines/default.toml")
  [ "$(readlink "/proc/$VSYSFS_PID/exe")" = "$DEST/usr/bin/vsysfs" ]
  # The machine file's nodes: [[numa.node]] 0..N-1 (dom0's one node: "0").
  local n want; n=$(grep -c '^\[\[numa\.node\]\]' "$DEST/usr/share/vsysfs/machines/default.toml")
  [ "$n" -ge 1 ]
  if [ "$n" -eq 1 ]; then want=0; else want=0-$((n - 1)); fi
  [ "$(cat "$MNT/devices/system/node/online")" = "$want" ]
  # A Dell script from the installed copy: the service tag from SMBIOS.
  run "$DEST/usr/bin/dell-smi" --sysfs "$MNT" --string 11 2
  [ "$status" -eq 0 ]
  [ "${lines[1]}" = 7XJ4PQ2 ]
  "$DEST/usr/bin/vsysfs-umount" "$MNT"
  if mountpoint -q "$MNT"; then false; fi
  rmdir "$MNT"
  unset MNT VSYSFS_PID
}

@test "make uninstall removes exactly what make install put" {
  # Something that is not ours stays.
  mkdir -p "$DEST/usr/bin"
  touch "$DEST/usr/bin/not-vsysfs"
  make -s -C "$VSYSFS_ROOT" uninstall PREFIX=/usr DESTDIR="$DEST" >/dev/null
  [ "$(cd "$DEST" && find . -type f)" = ./usr/bin/not-vsysfs ]
  [ ! -e "$DEST/usr/share/vsysfs" ]
  rm "$DEST/usr/bin/not-vsysfs"
}
