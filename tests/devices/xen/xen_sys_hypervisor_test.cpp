// devices/xen/xen_sys_hypervisor.cpp: /sys/hypervisor as
// drivers/xen/sys-hypervisor.c shows it (docs/kernel-semantics.md section 3.8).
#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include "core/config.hpp"
#include "tests/devices/xen/xen_balloon_test_support.hpp"

using namespace xen_test;

namespace {

mode_t mode_of(TestMachine& m, std::string_view path) {
  auto node = m.tree.find(path);
  REQUIRE_MESSAGE(node, path);
  return node->mode.load();
}

std::string hyp(std::string_view f) { return "hypervisor/" + std::string(f); }

}  // namespace

TEST_SUITE("xen_balloon") {

TEST_CASE("/sys/hypervisor: the files, 0444, with a Xen 4.17 HVM domU's values") {
  TestMachine m(small_machine_with("kthread"));
  const char* files[] = {"type", "guest_type", "uuid", "version/major", "version/minor",
                         "version/extra", "compilation/compiler", "compilation/compiled_by",
                         "compilation/compile_date", "properties/capabilities",
                         "properties/changeset", "properties/virtual_start",
                         "properties/pagesize", "properties/features", "properties/buildid",
                         "start_flags/privileged", "start_flags/initdomain",
                         "start_flags/unknown02", "start_flags/unknown31"};
  for (const char* f : files) {
    CAPTURE(f);
    CHECK(mode_of(m, hyp(f)) == 0444);
    CHECK(m.write(hyp(f), "1\n") == -EACCES);
  }
  CHECK(!m.exists(hyp("start_flags/unknown32")));
  CHECK(!m.exists(hyp("pmu")));
  CHECK(m.read(hyp("type")) == "xen\n");
  CHECK(m.read(hyp("guest_type")) == "HVM\n");
  CHECK(m.read(hyp("version/major")) == "4\n");
  CHECK(m.read(hyp("version/minor")) == "17\n");
  CHECK(m.read(hyp("version/extra")) == ".3\n");
  CHECK(m.read(hyp("compilation/compiled_by")) == "pkg-xen-devel\n");
  CHECK(m.read(hyp("properties/capabilities")) ==
        "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64\n");
  CHECK(m.read(hyp("properties/pagesize")) == "1000\n");
  CHECK(m.read(hyp("properties/virtual_start")) == "0\n");
  // memory_op_vnode_supported, writable_page_tables, auto_translated_physmap,
  // hvm_safe_pvclock, hvm_callback_vector, hvm_pirqs, not_direct_mapped.
  CHECK(m.read(hyp("properties/features")) == "00012705\n");
  CHECK(m.read(hyp("properties/buildid")) == "<denied>");  // XSM: not the hardware domain
  CHECK(m.read(hyp("start_flags/privileged")) == "0\n");
  CHECK(m.read(hyp("start_flags/initdomain")) == "0\n");
  const std::string uuid = m.read(hyp("uuid"));
  REQUIRE(uuid.size() == 37);
  CHECK(uuid[8] == '-');
  CHECK(uuid[14] == '4');  // version nibble of the derived handle
  CHECK(uuid.back() == '\n');
  // Stable for the same guest, different for another.
  TestMachine again(small_machine_with("kthread"));
  CHECK(again.read(hyp("uuid")) == uuid);
  TestMachine other(small_machine_with("kthread", "name = \"db\"\n"));
  CHECK(other.read(hyp("uuid")) != uuid);
}

TEST_CASE("/sys/hypervisor: values from [xen.hypervisor]; the hardware domain's view") {
  TestMachine m(small_machine_with(
      "workqueue",
      "domid = 0\n"
      "[xen.hypervisor]\nguest_type = \"PV\"\nuuid = \"F5E3A6C2-1B7D-4E0A-9C8F-2D4B6A8E0C1F\"\n"
      "version = \"4.300-rc\"\ncompiler = \"gcc 13\"\ncompiled_by = \"me\"\n"
      "compile_date = \"today\"\ncapabilities = \"xen-3.0-x86_64\"\nchangeset = \"git:1\"\n"
      "buildid = \"00ff41\"\n"));
  CHECK(m.read(hyp("guest_type")) == "PV\n");
  CHECK(m.read(hyp("uuid")) == "f5e3a6c2-1b7d-4e0a-9c8f-2d4b6a8e0c1f\n");
  CHECK(m.read(hyp("version/major")) == "4\n");
  CHECK(m.read(hyp("version/minor")) == "44\n");  // QUIRK: 300 & 0xff
  CHECK(m.read(hyp("version/extra")) == "-rc\n");
  CHECK(m.read(hyp("compilation/compiler")) == "gcc 13\n");
  CHECK(m.read(hyp("properties/changeset")) == "git:1\n");
  CHECK(m.read(hyp("properties/virtual_start")) == "ffff800000000000\n");
  // memory_op_vnode_supported, dom0, the three PV bits, direct_mapped.
  CHECK(m.read(hyp("properties/features")) == "000228e0\n");
  CHECK(m.read(hyp("properties/buildid")) == std::string("\x00\xff\x41", 3));
  CHECK(m.read(hyp("start_flags/privileged")) == "1\n");
  CHECK(m.read(hyp("start_flags/initdomain")) == "1\n");
  CHECK(m.read(hyp("start_flags/unknown02")) == "0\n");

  TestMachine flags(small_machine_with("kthread", "[xen.hypervisor]\nstart_flags = 0x80000004\n"
                                                  "guest_type = \"PVH\"\n"));
  CHECK(flags.read(hyp("start_flags/unknown02")) == "1\n");
  CHECK(flags.read(hyp("start_flags/unknown31")) == "1\n");
  CHECK(flags.read(hyp("start_flags/privileged")) == "0\n");
  CHECK(flags.read(hyp("properties/features")) == "00012305\n");  // no hvm_pirqs

  // major_show/minor_show: a zero XENVER_version is -ENODEV.
  TestMachine zero(small_machine_with("kthread", "[xen.hypervisor]\nversion = \"0.0\"\n"));
  CHECK(zero.read(hyp("version/major")) == "<ENODEV>");
  CHECK(zero.read(hyp("version/minor")) == "<ENODEV>");
  CHECK(zero.read(hyp("version/extra")) == "\n");
}

TEST_CASE("/sys/hypervisor: domid 0 defaults to a PV hardware domain with the null handle") {
  // Xen creates dom0 from a zeroed xen_domctl_createdomain: its handle is
  // all zeros. Xen builds dom0 PV (default) or PVH (dom0=pvh), never HVM.
  TestMachine m(small_machine_with("kthread", "domid = 0\nname = \"Domain-0\"\n"));
  CHECK(m.read(hyp("uuid")) == "00000000-0000-0000-0000-000000000000\n");
  CHECK(m.read(hyp("guest_type")) == "PV\n");
  CHECK(m.read(hyp("properties/virtual_start")) == "ffff800000000000\n");
  CHECK(m.read(hyp("start_flags/initdomain")) == "1\n");
  CHECK(m.read(hyp("properties/buildid")) != "<denied>");
  // A PV kernel disables cpuidle (arch/x86/xen/setup.c xen_arch_setup).
  CHECK(!m.exists("devices/system/cpu/cpuidle"));
  CHECK(TestMachine(small_machine_with("kthread")).exists("devices/system/cpu/cpuidle"));  // HVM
  TestMachine pvh(
      small_machine_with("kthread", "domid = 0\n[xen.hypervisor]\nguest_type = \"PVH\"\n"));
  CHECK(pvh.read(hyp("guest_type")) == "PVH\n");
  CHECK(pvh.read(hyp("uuid")) == "00000000-0000-0000-0000-000000000000\n");
  CHECK_THROWS_WITH_AS(TestMachine(small_machine_with(
                           "kthread", "domid = 0\n[xen.hypervisor]\nguest_type = \"HVM\"\n")),
                       doctest::Contains("never HVM"), vsysfs::core::ConfigError);
}

TEST_CASE("/sys/hypervisor: bad [xen.hypervisor] values are machine-file errors") {
  using vsysfs::core::ConfigError;
  const char* bad[] = {"guest_type = \"KVM\"\n", "uuid = \"1234\"\n",
                       "uuid = \"f5e3a6c2-1b7d-4e0a-9c8f-2d4b6a8e0c1g\"\n",
                       "version = \"4\"\n", "version = \"4.70000\"\n",
                       "version = \"4.17.0123456789abcdef\"\n",
                       "compiled_by = \"a-name-of-16-chr\"\n", "features = 0x100000000\n",
                       "buildid = \"abc\"\n", "unknown_key = 1\n"};
  for (const char* b : bad) {
    CAPTURE(b);
    CHECK_THROWS_AS(TestMachine(small_machine_with("kthread", std::string("[xen.hypervisor]\n") + b)),
                    ConfigError);
  }
}

}  // TEST_SUITE
