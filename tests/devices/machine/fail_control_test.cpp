// Unit tests of kernel/debug/vsysfs/fail (devices/machine/fail_control):
// the debugfs parsing of every file (junk changes nothing), the bounds of
// the list files, and the store/show points through fs::Server.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "tests/support/test_env.hpp"

using vsysfs::testing::TestMachine;

namespace {

constexpr const char* kMachine = R"([dcdbas]
model = "PowerEdge 1400"
)";

std::string f(std::string_view file) { return "kernel/debug/vsysfs/fail/" + std::string(file); }

}  // namespace

TEST_SUITE("fault_inject") {

TEST_CASE("fail/: one directory per point with the kernel's files and only its own extras") {
  TestMachine m(kMachine);
  for (const char* p : {"store", "show", "smi", "host_control", "page_alloc", "net_xmit",
                        "net_open", "xen_populate", "link_flap", "net_rx"})
    for (const char* file :
         {"probability", "interval", "times", "space", "verbose", "verbose_ratelimit_interval_ms",
          "verbose_ratelimit_burst", "task-filter", "injected"})
      CHECK_MESSAGE(m.exists(f(fmt::format("{}/{}", p, file))), p, "/", file);
  CHECK(m.exists(f("store/errno")));
  CHECK(m.exists(f("show/paths")));
  CHECK_FALSE(m.exists(f("smi/errno")));
  CHECK(m.exists(f("smi/kind")));
  CHECK(m.exists(f("smi/cbres1")));
  CHECK(m.exists(f("host_control/kind")));
  CHECK_FALSE(m.exists(f("host_control/cbres1")));
  CHECK(m.exists(f("page_alloc/ignore-gfp-wait")));
  CHECK(m.exists(f("page_alloc/min-order")));
  CHECK_FALSE(m.exists(f("store/min-order")));
  CHECK(m.exists(f("net_xmit/kind")));
  CHECK(m.exists(f("net_xmit/ifaces")));
  CHECK_FALSE(m.exists(f("net_xmit/paths")));
  CHECK_FALSE(m.exists(f("store/ifaces")));
  CHECK(m.read(f("net_xmit/kind")) == "drop\n");
  CHECK(m.read(f("net_xmit/ifaces")) == "");
  CHECK(m.read(f("net_open/errno")) == "12\n");  // ENOMEM
  CHECK(m.exists(f("net_open/ifaces")));
  CHECK_FALSE(m.exists(f("net_open/kind")));
  CHECK_FALSE(m.exists(f("net_xmit/errno")));
  CHECK(m.read(f("smi/probability")) == "0\n");
  CHECK(m.read(f("smi/interval")) == "1\n");
  CHECK(m.read(f("smi/times")) == "1\n");
  CHECK(m.read(f("smi/verbose")) == "2\n");
  CHECK(m.read(f("smi/task-filter")) == "N\n");
  CHECK(m.read(f("page_alloc/ignore-gfp-wait")) == "Y\n");
  CHECK(m.read(f("page_alloc/min-order")) == "1\n");
  CHECK(m.read(f("store/errno")) == "5\n");
  CHECK(m.read(f("seed")) == "0\n");
  CHECK(m.read(f("pids")) == "");
}

TEST_CASE("numbers parse as debugfs simple attributes: base 0, 23 bytes, cut to the width") {
  TestMachine m(kMachine);
  CHECK(m.write(f("smi/probability"), "0x10\n") == 5);
  CHECK(m.read(f("smi/probability")) == "16\n");
  CHECK(m.write(f("smi/interval"), "010") == 3);  // octal
  CHECK(m.read(f("smi/interval")) == "8\n");
  // atomic_t: signed, then the low 32 bits.
  CHECK(m.write(f("smi/times"), "-1\n") == 3);
  CHECK(m.read(f("smi/times")) == "-1\n");
  CHECK(m.write(f("smi/times"), "4294967295") == 10);
  CHECK(m.read(f("smi/times")) == "-1\n");
  CHECK(m.write(f("smi/space"), "4294967296") == 10);
  CHECK(m.read(f("smi/space")) == "0\n");
  // u32.
  CHECK(m.write(f("smi/verbose_ratelimit_burst"), "4294967297") == 10);
  CHECK(m.read(f("smi/verbose_ratelimit_burst")) == "1\n");
  // QUIRK: only 23 bytes are parsed; the write still takes everything.
  const std::string long_in =
      "00000000000000000000000"
      "7\n";  // 23 zeros
  CHECK(m.write(f("smi/probability"), long_in) == static_cast<long>(long_in.size()));
  CHECK(m.read(f("smi/probability")) == "0\n");
}

TEST_CASE("bad input: the kernel's errno, and nothing changes") {
  TestMachine m(kMachine);
  REQUIRE(m.write(f("smi/probability"), "7") == 1);
  CHECK(m.write(f("smi/probability"), "seven") == -EINVAL);
  CHECK(m.write(f("smi/probability"), "-1") == -EINVAL);  // kstrtoull: no sign
  CHECK(m.write(f("smi/probability"), "18446744073709551616") == -ERANGE);
  CHECK(m.write(f("smi/probability"), "7 ") == -EINVAL);
  CHECK(m.read(f("smi/probability")) == "7\n");
  CHECK(m.write(f("smi/times"), "9223372036854775808") == -ERANGE);
  CHECK(m.write(f("smi/times"), "1x") == -EINVAL);
  CHECK(m.read(f("smi/times")) == "1\n");
  // bool: kstrtobool on the first 3 bytes.
  CHECK(m.write(f("smi/task-filter"), "maybe") == -EINVAL);
  CHECK(m.read(f("smi/task-filter")) == "N\n");
  CHECK(m.write(f("smi/task-filter"), "yes") == 3);
  CHECK(m.read(f("smi/task-filter")) == "Y\n");
  CHECK(m.write(f("smi/task-filter"), "off") == 3);
  CHECK(m.read(f("smi/task-filter")) == "N\n");
  // The point's own files.
  CHECK(m.write(f("store/errno"), "0") == -EINVAL);
  CHECK(m.write(f("store/errno"), "4096") == -EINVAL);
  CHECK(m.write(f("store/errno"), "EIO") == -EINVAL);
  CHECK(m.read(f("store/errno")) == "5\n");
  CHECK(m.write(f("store/errno"), "16\n") == 3);
  CHECK(m.read(f("store/errno")) == "16\n");
  CHECK(m.write(f("smi/kind"), "sometimes") == -EINVAL);
  CHECK(m.read(f("smi/kind")) == "no_answer\n");
  CHECK(m.write(f("smi/kind"), "short\n") == 6);
  CHECK(m.read(f("smi/kind")) == "short\n");
  CHECK(m.write(f("smi/cbres1"), "0") == -EINVAL);
  CHECK(m.write(f("smi/cbres1"), "-4") == -EINVAL);
  CHECK(m.write(f("smi/cbres1"), "-2") == 2);
  CHECK(m.read(f("smi/cbres1")) == "-2\n");
  CHECK(m.write(f("smi/answer_bytes"), "16") == -EINVAL);
  CHECK(m.read(f("smi/answer_bytes")) == "4\n");
  CHECK(m.write(f("host_control/kind"), "no_answer") == -EINVAL);
  CHECK(m.write(f("host_control/kind"), "no_power") == 8);
  CHECK(m.read(f("host_control/kind")) == "no_power\n");
  CHECK(m.write(f("seed"), "x") == -EINVAL);
  CHECK(m.read(f("seed")) == "0\n");
  CHECK(m.write(f("seed"), "0xffffffffffffffff") == 18);
  CHECK(m.read(f("seed")) == "18446744073709551615\n");
}

TEST_CASE("net_xmit: kind is busy, drop or hang; ifaces a bounded list of valid names") {
  TestMachine m(kMachine);
  CHECK(m.write(f("net_xmit/kind"), "lost") == -EINVAL);
  CHECK(m.read(f("net_xmit/kind")) == "drop\n");
  CHECK(m.write(f("net_xmit/kind"), "hang\n") == 5);
  CHECK(m.read(f("net_xmit/kind")) == "hang\n");
  CHECK(m.write(f("net_xmit/kind"), "busy") == 4);
  CHECK(m.read(f("net_xmit/kind")) == "busy\n");
  CHECK(m.write(f("net_xmit/ifaces"), "eth1 eth0\n") == 10);
  CHECK(m.read(f("net_xmit/ifaces")) == "eth1\neth0\n");
  // IFNAMSIZ is 16 with the NUL: 16 bytes are one too many.
  CHECK(m.write(f("net_xmit/ifaces"), "abcdefghijklmnop") == -ENAMETOOLONG);
  CHECK(m.write(f("net_xmit/ifaces"), "eth0 a/b") == -EINVAL);
  CHECK(m.write(f("net_xmit/ifaces"), "eth0:1") == -EINVAL);
  CHECK(m.write(f("net_xmit/ifaces"), "..") == -EINVAL);
  std::string many;
  for (int i = 0; i < 17; ++i) many += fmt::format("e{} ", i);
  CHECK(m.write(f("net_xmit/ifaces"), many) == -E2BIG);
  CHECK(m.read(f("net_xmit/ifaces")) == "eth1\neth0\n");
  CHECK(m.write(f("net_xmit/ifaces"), "abcdefghijklmno") == 15);
  CHECK(m.write(f("net_xmit/ifaces"), "\n") == 1);
  CHECK(m.read(f("net_xmit/ifaces")) == "");
}

TEST_CASE("pids and paths are bounded lists; a bad or oversized write changes nothing") {
  TestMachine m(kMachine);
  CHECK(m.write(f("pids"), "30 10,20\n10") == 11);
  CHECK(m.read(f("pids")) == "10\n20\n30\n");
  CHECK(m.write(f("pids"), "10 0") == -EINVAL);
  CHECK(m.write(f("pids"), "10 -3") == -EINVAL);
  CHECK(m.write(f("pids"), "4194305") == -EINVAL);
  CHECK(m.write(f("pids"), "1x") == -EINVAL);
  std::string many;
  for (int i = 1; i <= 65; ++i) many += fmt::format("{} ", i);
  CHECK(m.write(f("pids"), many) == -E2BIG);
  CHECK(m.read(f("pids")) == "10\n20\n30\n");
  many.clear();
  for (int i = 1; i <= 64; ++i) many += fmt::format("{} ", i);
  CHECK(m.write(f("pids"), many) == static_cast<long>(many.size()));
  CHECK(m.write(f("pids"), "\n") == 1);
  CHECK(m.read(f("pids")) == "");

  CHECK(m.write(f("store/paths"), "class/net/*/mtu devices/*\n") == 26);
  CHECK(m.read(f("store/paths")) == "class/net/*/mtu\ndevices/*\n");
  std::string globs;
  for (int i = 0; i < 17; ++i) globs += fmt::format("p{} ", i);
  CHECK(m.write(f("store/paths"), globs) == -E2BIG);
  CHECK(m.write(f("store/paths"), std::string(256, 'a')) == -ENAMETOOLONG);
  CHECK(m.read(f("store/paths")) == "class/net/*/mtu\ndevices/*\n");
  CHECK(m.write(f("store/paths"), " ") == 1);
  CHECK(m.read(f("store/paths")) == "");
}

TEST_CASE("store point: the caller gets the errno, the attribute does not change") {
  TestMachine m(kMachine);
  const std::string hcs = "devices/platform/dcdbas/host_control_smi_type";
  REQUIRE(m.write(hcs, "2") == 1);
  REQUIRE(m.write(f("store/probability"), "100") == 3);
  REQUIRE(m.write(f("store/errno"), "16") == 2);
  REQUIRE(m.write(f("store/paths"), "devices/platform/dcdbas/host_control_*") > 0);
  CHECK(m.write(hcs, "3") == -EBUSY);
  CHECK(m.read(hcs) == "2\n");
  CHECK(m.read(f("store/times")) == "0\n");
  CHECK(m.read(f("store/injected")) == "1\n");
  // times ran out: the next store goes through.
  CHECK(m.write(hcs, "3") == 1);
  CHECK(m.read(hcs) == "3\n");
  // A path outside the list is never failed.
  REQUIRE(m.write(f("store/times"), "-1") == 2);
  CHECK(m.write("devices/platform/dcdbas/smi_data_buf_size", "64") == 2);
  CHECK(m.write(hcs, "1") == -EBUSY);
  // The control plane stays writable while store fails everything.
  REQUIRE(m.write(f("store/paths"), "*") == 1);
  CHECK(m.write(f("store/probability"), "0") == 1);
  CHECK(m.write(hcs, "1") == 1);
  const auto dumps = m.events_of("fault_inject", "fail");
  REQUIRE(dumps.size() == 2);
  CHECK(dumps[0].field("name") == "\"store\"");
  CHECK(dumps[0].field("site") == "\"" + hcs + "\"");
}

TEST_CASE("show point: reads fail with the errno, for text and binary attributes") {
  TestMachine m(kMachine);
  REQUIRE(m.write("devices/platform/dcdbas/smi_data_buf_size", "64") == 2);
  REQUIRE(m.write(f("show/probability"), "100") == 3);
  REQUIRE(m.write(f("show/times"), "2") == 1);
  REQUIRE(m.write(f("show/errno"), "6") == 1);  // ENXIO
  CHECK(m.read("devices/platform/dcdbas/smi_data_buf_size") == "<ENXIO>");
  CHECK(m.read("devices/platform/dcdbas/smi_data") == "<ENXIO>");
  CHECK(m.read("devices/platform/dcdbas/smi_data_buf_size") == "64\n");
  CHECK(m.read(f("show/injected")) == "2\n");
}

TEST_CASE("delay_ms: a delayed store runs only when the clock passes the deadline") {
  TestMachine m(kMachine);
  const std::string hcs = "devices/platform/dcdbas/host_control_smi_type";
  REQUIRE(m.write(hcs, "2") == 1);
  CHECK(m.read(f("store/delay_ms")) == "0\n");
  CHECK(m.write(f("store/delay_ms"), "4294967296") == -ERANGE);
  CHECK(m.write(f("store/delay_ms"), "x") == -EINVAL);
  CHECK_FALSE(m.exists(f("smi/delay_ms")));
  REQUIRE(m.write(f("store/delay_ms"), "500") == 3);
  REQUIRE(m.write(f("store/paths"), hcs) > 0);
  REQUIRE(m.write(f("store/probability"), "100") == 3);
  std::atomic<long> result{-1000};
  std::thread writer([&] { result = m.write(hcs, "3"); });
  // The "start" event comes once the deadline is set.
  while (m.events_of("fault_inject", "delay").empty()) std::this_thread::yield();
  m.advance_ms(499);
  CHECK(result.load() == -1000);
  CHECK(m.read(hcs) == "2\n");  // the device has not seen it
  m.advance_ms(1);
  writer.join();
  CHECK(result.load() == 1);
  CHECK(m.read(hcs) == "3\n");
  const auto delays = m.events_of("fault_inject", "delay");
  REQUIRE(delays.size() == 2);
  CHECK(delays[0].result == "start");
  CHECK(delays[1].result == "done");
}

TEST_CASE("link_flap and net_rx files: parsing, bounds, and a schedule that cannot fit") {
  TestMachine m(kMachine);
  CHECK(m.read(f("link_flap/down_ms")) == "100\n");
  CHECK(m.read(f("link_flap/period_ms")) == "1000\n");
  CHECK(m.read(f("link_flap/count")) == "0\n");
  CHECK(m.read(f("link_flap/ifaces")) == "");
  CHECK_FALSE(m.exists(f("link_flap/kind")));
  CHECK_FALSE(m.exists(f("link_flap/paths")));
  CHECK(m.write(f("link_flap/down_ms"), "0") == -EINVAL);
  CHECK(m.write(f("link_flap/period_ms"), "0x100000000") == -ERANGE);
  CHECK(m.write(f("link_flap/period_ms"), "-1") == -EINVAL);
  CHECK(m.read(f("link_flap/period_ms")) == "1000\n");
  CHECK(m.write(f("link_flap/period_ms"), "0x64") == 4);  // base 0: 100
  CHECK(m.write(f("link_flap/count"), "3") == -EINVAL);   // down_ms 100 >= period_ms 100
  CHECK(m.read(f("link_flap/count")) == "0\n");
  CHECK(m.write(f("link_flap/down_ms"), "99") == 2);
  CHECK(m.write(f("link_flap/count"), "3") == 1);
  CHECK(m.read(f("link_flap/count")) == "3\n");
  m.advance_ms(100);
  CHECK(m.read(f("link_flap/count")) == "2\n");
  CHECK(m.write(f("link_flap/count"), "0") == 1);
  CHECK(m.read(f("net_rx/kind")) == "drop\n");
  CHECK(m.write(f("net_rx/kind"), "hang") == -EINVAL);
  CHECK(m.write(f("net_rx/kind"), "corrupt\n") == 8);
  CHECK(m.read(f("net_rx/kind")) == "corrupt\n");
  CHECK(m.write(f("net_rx/ifaces"), "eth0 a:b") == -EINVAL);
  CHECK(m.read(f("net_rx/ifaces")) == "");
  CHECK_FALSE(m.exists(f("net_rx/errno")));
}

}  // TEST_SUITE("fault_inject")
