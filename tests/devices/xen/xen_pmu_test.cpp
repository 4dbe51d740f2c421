// hypervisor/pmu/ of the initial domain (devices/xen/xen_sys_hypervisor.cpp
// XenPmu over XenHypervisor::xenpmu_*): drivers/xen/sys-hypervisor.c's
// pmu_mode and pmu_features, Xen's do_xenpmu_op answers, and the vPMU in
// machine snapshots (xen_state.cpp hv.vpmu.*).
#include <doctest/doctest.h>

#include <string>

#include "core/config.hpp"
#include "tests/devices/xen/xen_balloon_test_support.hpp"

using namespace xen_test;

namespace {

std::string pmu(std::string_view f) { return "hypervisor/pmu/" + std::string(f); }
std::string K(std::string_view f) { return "kernel/debug/vsysfs/" + std::string(f); }

// dom0 (PV by default) of a host booted with the given vpmu= option.
std::string dom0(std::string_view vpmu, std::string_view type = "PV") {
  return small_machine_with(
      "kthread", "domid = 0\n",
      fmt::format("[xen.hypervisor]\nguest_type = \"{}\"\n{}", type,
                  vpmu.empty() ? std::string() : fmt::format("vpmu = \"{}\"\n", vpmu)));
}

mode_t mode_of(TestMachine& m, std::string_view path) {
  auto node = m.tree.find(path);
  REQUIRE_MESSAGE(node, path);
  return node->mode.load();
}

}  // namespace

TEST_SUITE("xen_balloon") {

TEST_CASE("pmu: only the initial domain has it; Xen's default vpmu=off answers EOPNOTSUPP") {
  CHECK(!TestMachine(small_machine_with("kthread")).exists("hypervisor/pmu"));  // a domU
  // xen_initial_domain() is SIF_INITDOMAIN, whatever the domid.
  TestMachine flagged(small_machine_with("kthread", "[xen.hypervisor]\nstart_flags = 2\n"));
  CHECK(flagged.exists(pmu("pmu_mode")));
  TestMachine m(dom0(""));
  CHECK(mode_of(m, pmu("pmu_mode")) == 0644);
  CHECK(mode_of(m, pmu("pmu_features")) == 0644);
  CHECK(m.read(pmu("pmu_mode")) == "<EOPNOTSUPP>");
  CHECK(m.read(pmu("pmu_features")) == "<EOPNOTSUPP>");
  // The name is parsed first: EINVAL before the hypercall's EOPNOTSUPP.
  CHECK(m.write(pmu("pmu_mode"), "bogus\n") == -EINVAL);
  CHECK(m.write(pmu("pmu_mode"), "self\n") == -EOPNOTSUPP);
  CHECK(m.write(pmu("pmu_features"), "junk") == -EINVAL);
  CHECK(m.write(pmu("pmu_features"), "1") == -EOPNOTSUPP);
  // A PVH dom0 has a vLAPIC: EOPNOTSUPP even with vPMU on.
  TestMachine pvh(dom0("on", "PVH"));
  CHECK(pvh.read(pmu("pmu_mode")) == "<EOPNOTSUPP>");
}

TEST_CASE("pmu_mode: the names, the strncmp prefix quirk, EINVAL changes nothing") {
  TestMachine m(dom0("on"));
  CHECK(m.read(pmu("pmu_mode")) == "self\n");  // vpmu=1 starts in XENPMU_MODE_SELF
  CHECK(m.read(pmu("pmu_features")) == "0x0\n");
  CHECK(m.write(pmu("pmu_mode"), "hv\n") == 3);
  CHECK(m.read(pmu("pmu_mode")) == "hv\n");
  CHECK(m.write(pmu("pmu_mode"), "all") == 3);  // no newline: the last byte is not compared
  CHECK(m.read(pmu("pmu_mode")) == "all\n");
  CHECK(m.write(pmu("pmu_mode"), "off\n") == 4);
  CHECK(m.read(pmu("pmu_mode")) == "off\n");
  CHECK(m.write(pmu("pmu_mode"), "se\n") == 3);  // QUIRK: a prefix selects
  CHECK(m.read(pmu("pmu_mode")) == "self\n");
  CHECK(m.write(pmu("pmu_mode"), "\n") == 1);  // QUIRK: strncmp of 0 bytes: the first, off
  CHECK(m.read(pmu("pmu_mode")) == "off\n");
  REQUIRE(m.write(pmu("pmu_mode"), "hv\n") == 3);
  for (const char* bad : {"bogus\n", "offx\n", "selfish\n", "HV\n", "hv \n"}) {
    CAPTURE(bad);
    CHECK(m.write(pmu("pmu_mode"), bad) == -EINVAL);
    CHECK(m.read(pmu("pmu_mode")) == "hv\n");
  }
}

TEST_CASE("pmu_features: kstrtou32 base 0, then the hypervisor's mask") {
  TestMachine m(dom0("bts,arch"));
  CHECK(m.read(pmu("pmu_mode")) == "self\n");  // a feature implies vpmu=1
  CHECK(m.read(pmu("pmu_features")) == "0x5\n");
  CHECK(m.write(pmu("pmu_features"), "0x2\n") == 4);
  CHECK(m.read(pmu("pmu_features")) == "0x2\n");
  CHECK(m.write(pmu("pmu_features"), "07") == 2);  // octal
  CHECK(m.read(pmu("pmu_features")) == "0x7\n");
  CHECK(m.write(pmu("pmu_features"), "0") == 1);
  CHECK(m.read(pmu("pmu_features")) == "0x0\n");
  REQUIRE(m.write(pmu("pmu_features"), "1") == 1);
  CHECK(m.write(pmu("pmu_features"), "8") == -EINVAL);  // XENPMU_feature_set: outside the mask
  CHECK(m.write(pmu("pmu_features"), "junk") == -EINVAL);
  CHECK(m.write(pmu("pmu_features"), "-1") == -EINVAL);
  CHECK(m.write(pmu("pmu_features"), "0x100000000") == -ERANGE);
  CHECK(m.read(pmu("pmu_features")) == "0x1\n");
  CHECK_THROWS_AS(TestMachine(dom0("on,perf")), vsysfs::core::ConfigError);
  CHECK(TestMachine(dom0("ipc,off")).read(pmu("pmu_mode")) == "<EOPNOTSUPP>");  // off clears
}

TEST_CASE("pmu: a machine snapshot keeps the mode and features; a bad record changes nothing") {
  TestMachine m(dom0("on"));
  REQUIRE(m.write(pmu("pmu_mode"), "all\n") == 4);
  REQUIRE(m.write(pmu("pmu_features"), "2") == 1);
  REQUIRE(m.write(K("machine/snapshot"), "s") == 1);
  REQUIRE(m.write(pmu("pmu_mode"), "off\n") == 4);
  REQUIRE(m.write(pmu("pmu_features"), "4") == 1);
  REQUIRE(m.write(K("machine/restore"), "s") == 1);
  CHECK(m.read(pmu("pmu_mode")) == "all\n");
  CHECK(m.read(pmu("pmu_features")) == "0x2\n");
}

}  // TEST_SUITE("xen_balloon")
