#!/usr/bin/env bats
# tests/check-docs (make check-docs): every citation in a comment leads to
# something a fresh clone has (docs/testing.md "Static checks"). It passes
# on the tree, and fails on a copy with one planted bad citation of each
# kind, naming the file.

load helpers

setup() {
  WORK=$(mktemp -d)
  cp -r "$VSYSFS_ROOT/core" "$VSYSFS_ROOT/devices" "$VSYSFS_ROOT/fs" "$VSYSFS_ROOT/docs" "$WORK/"
}
teardown() { rm -rf "$WORK"; }

@test "check-docs passes on the tree" {
  run "$VSYSFS_ROOT/tests/check-docs" "$VSYSFS_ROOT"
  [ "$status" -eq 0 ]
  [[ "$output" == *"check-docs: ok"* ]]
}

@test "check-docs passes on the copy before anything is planted" {
  run "$VSYSFS_ROOT/tests/check-docs" "$WORK"
  [ "$status" -eq 0 ]
}

@test "check-docs fails on an issue number in a comment" {
  echo '// The limit comes from issue 9.' >> "$WORK/core/result.cpp"
  run "$VSYSFS_ROOT/tests/check-docs" "$WORK"
  [ "$status" -ne 0 ]
  [[ "$output" == *"unfollowable citation: core/result.cpp"* ]]
}

@test "check-docs fails on a seed file or a ../shared path" {
  echo '// See shared/seeds/002_x.txt.' >> "$WORK/devices/machine/machine.cpp"
  run "$VSYSFS_ROOT/tests/check-docs" "$WORK"
  [ "$status" -ne 0 ]
  [[ "$output" == *"devices/machine/machine.cpp"* ]]
  cp "$VSYSFS_ROOT/devices/machine/machine.cpp" "$WORK/devices/machine/machine.cpp"
  echo '// As the seed document says.' >> "$WORK/fs/reply.cpp"
  run "$VSYSFS_ROOT/tests/check-docs" "$WORK"
  [ "$status" -ne 0 ]
  [[ "$output" == *"fs/reply.cpp"* ]]
}

@test "check-docs fails on a bare 'reference N'" {
  echo '// EINVAL (reference 5.2).' >> "$WORK/fs/reply.cpp"
  run "$VSYSFS_ROOT/tests/check-docs" "$WORK"
  [ "$status" -ne 0 ]
  [[ "$output" == *"fs/reply.cpp"* ]]
}

@test "check-docs fails on a docs section that has no heading" {
  printf '// Kernel: docs/kernel-semantics.md\n// section 5.77 (wrapped over two lines).\n' >> "$WORK/core/result.cpp"
  run "$VSYSFS_ROOT/tests/check-docs" "$WORK"
  [ "$status" -ne 0 ]
  [[ "$output" == *"core/result.cpp"*"section 5.77, which has no heading numbered 5.77"* ]]
}

@test "check-docs fails on the second number of a section list" {
  echo '// docs/design.md sections 2, 42.' >> "$WORK/core/result.cpp"
  run "$VSYSFS_ROOT/tests/check-docs" "$WORK"
  [ "$status" -ne 0 ]
  [[ "$output" == *"docs/design.md section 42"* ]]
  [[ "$output" != *"docs/design.md section 2,"* ]]
}

@test "check-docs fails on a docs page that does not exist" {
  echo '// docs/nowhere.md section 1' >> "$WORK/core/result.cpp"
  run "$VSYSFS_ROOT/tests/check-docs" "$WORK"
  [ "$status" -ne 0 ]
  [[ "$output" == *"docs/nowhere.md, which does not exist"* ]]
}

@test "check-docs fails when a folder it must read is missing" {
  rm -rf "$WORK/docs"
  run "$VSYSFS_ROOT/tests/check-docs" "$WORK"
  [ "$status" -eq 2 ]
}

@test "check-docs follows Markdown section links relative to the page" {
  echo 'As [kernel-semantics.md sections 2.1 and 3.99](../kernel-semantics.md) says.' >> "$WORK/docs/devices/xen.md"
  run "$VSYSFS_ROOT/tests/check-docs" "$WORK"
  [ "$status" -ne 0 ]
  [[ "$output" == *"docs/devices/xen.md"*"section 3.99, which has no heading"* ]]
  [[ "$output" != *"section 2.1,"* ]]
  cp "$VSYSFS_ROOT/docs/devices/xen.md" "$WORK/docs/devices/xen.md"
  echo 'See [design.md section 3](design.md).' >> "$WORK/docs/devices/xen.md"
  run "$VSYSFS_ROOT/tests/check-docs" "$WORK"
  [ "$status" -ne 0 ]
  [[ "$output" == *"links design.md, which does not exist"* ]]
}
