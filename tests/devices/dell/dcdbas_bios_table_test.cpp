// Unit tests of the SMI answer table of devices/dell/dcdbas_bios.cpp: the
// [[dcdbas.smi_answer]] rules and kernel/debug/vsysfs/dcdbas/smi_answers
// (docs/devices/dell.md "Scripting the BIOS"), driven through the files.
#include "devices/dell/dcdbas_bios.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cerrno>
#include <string>

#include "tests/devices/dell/dcdbas_test_util.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::testing::TestMachine;
using namespace vsysfs::testing::dcdbas;
using Out = std::array<std::int32_t, 4>;

namespace {

constexpr std::string_view kTable = "kernel/debug/vsysfs/dcdbas/smi_answers";

}  // namespace

TEST_SUITE("dcdbas") {

TEST_CASE("BIOS table: a machine-file rule overrides the built-in answer") {
  TestMachine m(std::string(kPe1400).append(R"(
[[dcdbas.smi_answer]]
class = 0
select = 0
input = [0x20, "any", "any", "any"]
result = -2
[[dcdbas.smi_answer]]
class = 17
select = 1
output = [1, 0xffffffff, -5]
)"));
  // Token read of location 0x20 now fails; 0x10 still reaches the BIOS.
  CHECK(ci_smi(m, 0, 0, {0x20, 0, 0, 0}) == Out{-2, 0, 0, 0});
  CHECK(ci_smi(m, 0, 0, {0x10, 0, 0, 0}) == Out{0, 1, 0, 1});
  // A class the built-in BIOS does not know.
  CHECK(ci_smi(m, 17, 1, {0, 0, 0, 0}) == Out{0, 1, -1, -5});
  CHECK(ci_smi(m, 17, 2, {0, 0, 0, 0}) == Out{-2, 0, 0, 0});
  CHECK(m.read(std::string(kTable)) ==
        "add 0 0 in=0x20,*,*,* out=0x0,0x0,0x0 res=-2\n"
        "add 17 1 in=*,*,*,* out=0x1,0xffffffff,0xfffffffb res=0\n");
  // Each table answer is logged with its entry.
  auto smi = m.events_of("dcdbas", "smi");
  REQUIRE(smi.size() == 4);
  CHECK(smi[0].field("smi_answer") == "0");
  CHECK(smi[0].field("output") == "[-2,0,0,0]");
  CHECK(smi[1].field("smi_answer").empty());
  CHECK(smi[2].field("smi_answer") == "1");
}

TEST_CASE("BIOS table: a scripted answer changes nothing else") {
  TestMachine m(kPe1400);
  REQUIRE(m.write(std::string(kTable), "add 1 0 in=0x20,*,*,* res=0 out=7,0,9\n") > 0);
  // The write "succeeds" but the setting keeps 3: the table answered.
  CHECK(ci_smi(m, 1, 0, {0x20, 4, 0, 0}) == Out{0, 7, 0, 9});
  CHECK(ci_smi(m, 0, 0, {0x20, 0, 0, 0}) == Out{0, 3, 0, 9});
}

TEST_CASE("BIOS table: most exact input match wins, then the earlier entry") {
  TestMachine m(kPe1400);
  REQUIRE(m.write(std::string(kTable),
                  "add 5 5 res=1\n"
                  "add 5 5 in=1,*,*,* res=2\n"
                  "add 5 5 in=1,2,*,* res=3\n"
                  "add 5 5 in=*,2,*,* res=4\n"
                  "add 5 5 in=1,2,*,* res=5\n") > 0);
  CHECK(ci_smi(m, 5, 5, {9, 9, 9, 9})[0] == 1);  // only the catch-all
  CHECK(ci_smi(m, 5, 5, {1, 9, 9, 9})[0] == 2);  // one exact word beats none
  CHECK(ci_smi(m, 5, 5, {9, 2, 9, 9})[0] == 4);
  CHECK(ci_smi(m, 5, 5, {1, 2, 9, 9})[0] == 3);   // two beat one; entry 2 before 4
  CHECK(ci_smi(m, 5, 6, {1, 2, 9, 9})[0] == -2);  // select differs: built-in
  CHECK(m.events_of("dcdbas", "smi")[3].field("smi_answer") == "2");
  // del renumbers: deleting entry 2 leaves entry 4 (now 3) the best match.
  REQUIRE(m.write(std::string(kTable), "del 2\n") == 6);
  CHECK(ci_smi(m, 5, 5, {1, 2, 9, 9})[0] == 5);
  REQUIRE(m.write(std::string(kTable), "clear\n") == 6);
  CHECK(m.read(std::string(kTable)).empty());
  CHECK(ci_smi(m, 5, 5, {1, 2, 9, 9})[0] == -2);
}

TEST_CASE("BIOS table: a read pastes back as the same table") {
  TestMachine m(kPe1400);
  REQUIRE(m.write(std::string(kTable),
                  "add 0x11 1 in=*,0xffffffff,0,* out=-1,2,3 res=-3\nadd 0 2\n") > 0);
  const std::string listed = m.read(std::string(kTable));
  REQUIRE(m.write(std::string(kTable), "clear\n" + listed) > 0);
  CHECK(m.read(std::string(kTable)) == listed);
  CHECK(listed ==
        "add 17 1 in=*,0xffffffff,0x0,* out=0xffffffff,0x2,0x3 res=-3\n"
        "add 0 2 in=*,*,*,* out=0x0,0x0,0x0 res=0\n");
}

TEST_CASE("BIOS table: bad lines are EINVAL and change nothing") {
  TestMachine m(kPe1400);
  REQUIRE(m.write(std::string(kTable), "add 1 2 res=-1\n") > 0);
  const std::string before = m.read(std::string(kTable));
  const std::string_view bads[] = {"\n",
                                   "add\n",
                                   "add 1\n",
                                   "add 65536 0\n",
                                   "add 1 -1\n",
                                   "add x 0\n",
                                   "add 1 0 in=1,2,3\n",
                                   "add 1 0 in=1,2,3,4,5\n",
                                   "add 1 0 in=1,,3,4\n",
                                   "add 1 0 in=0x100000000,*,*,*\n",
                                   "add 1 0 in=-1,*,*,*\n",
                                   "add 1 0 out=1,2\n",
                                   "add 1 0 out=1,2,3,4\n",
                                   "add 1 0 out=0x100000000,0,0\n",
                                   "add 1 0 res=2147483648\n",
                                   "add 1 0 res=-1 res=-2\n",
                                   "add 1 0 in=*,*,*,* in=*,*,*,*\n",
                                   "add 1 0 foo=1\n",
                                   "add 1 0 res=\n",
                                   "del\n",
                                   "del x\n",
                                   "del -0\n",
                                   "del 1 2\n",
                                   "clear 1\n",
                                   "remove 0\n",
                                   "add 1 0\n\n",
                                   "add 1 0\nbogus\n",
                                   "clear\nadd 1 0 res=1\nadd 2\n",
                                   "add 1 0 res=\x01\n",
                                   std::string_view("add 1 0\0", 8)};
  for (std::string_view bad : bads) {
    CAPTURE(bad);
    CHECK(m.write(std::string(kTable), bad) == -EINVAL);
  }
  CHECK(m.read(std::string(kTable)) == before);
  // del of a missing entry: ENOENT, and the lines before it are not applied.
  CHECK(m.write(std::string(kTable), "clear\ndel 0\n") == -ENOENT);
  CHECK(m.read(std::string(kTable)) == before);
  CHECK(m.events_of("dcdbas", "smi_answers_write").back().result == "ENOENT");
}

TEST_CASE("BIOS table: at most 256 entries, ENOSPC beyond, all or none") {
  TestMachine m(kPe1400);
  // A write is at most a page: the 255 entries go in batches of whole lines.
  for (int b = 0; b < 255; b += 85) {
    std::string batch;
    for (int i = b; i < b + 85; ++i) batch += fmt::format("add 40 {} res=1\n", i);
    REQUIRE(m.write(std::string(kTable), batch) == static_cast<long>(batch.size()));
  }
  CHECK(m.write(std::string(kTable), "add 40 300\nadd 40 301\n") == -ENOSPC);
  CHECK(ci_smi(m, 40, 300, {0, 0, 0, 0})[0] == -2);  // the first add was not kept
  CHECK(m.write(std::string(kTable), "add 40 300\n") > 0);
  CHECK(m.write(std::string(kTable), "add 40 301\n") == -ENOSPC);
  // A del in the same write makes room.
  CHECK(m.write(std::string(kTable), "del 0\nadd 40 301 res=7\n") > 0);
  CHECK(ci_smi(m, 40, 301, {0, 0, 0, 0})[0] == 7);
}

TEST_CASE("BIOS table: root only (0600; the kernel checks it, default_permissions)") {
  TestMachine m(kPe1400);
  CHECK(m.tree.find(kTable)->mode.load() == 0600);
}

TEST_CASE("BIOS table: machine-file errors name the key") {
  using vsysfs::core::ConfigError;
  CHECK_THROWS_WITH_AS(TestMachine("[dcdbas]\n[[dcdbas.smi_answer]]\nclass = 1\n"),
                       doctest::Contains("class and select"), ConfigError);
  CHECK_THROWS_WITH_AS(
      TestMachine("[dcdbas]\n[[dcdbas.smi_answer]]\nclass = 1\nselect = 0\ninput = [1, 2]\n"),
      doctest::Contains("input"), ConfigError);
  CHECK_THROWS_WITH_AS(
      TestMachine(
          "[dcdbas]\n[[dcdbas.smi_answer]]\nclass = 1\nselect = 0\ninput = [1, 'some', 3, 4]\n"),
      doctest::Contains("any"), ConfigError);
  CHECK_THROWS_WITH_AS(
      TestMachine(
          "[dcdbas]\n[[dcdbas.smi_answer]]\nclass = 1\nselect = 0\noutput = [1, 2, 3, 4]\n"),
      doctest::Contains("cbRES1 is result"), ConfigError);
  CHECK_THROWS_WITH_AS(
      TestMachine("[dcdbas]\n[[dcdbas.smi_answer]]\nclass = 1\nselect = 0\nresult = 2147483648\n"),
      doctest::Contains("result"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine("[dcdbas]\n[[dcdbas.smi_answer]]\nclass = 65536\nselect = 0\n"),
                       doctest::Contains("16 bits"), ConfigError);
  std::string many = "[dcdbas]\n";
  for (int i = 0; i < 257; ++i) many += "[[dcdbas.smi_answer]]\nclass = 1\nselect = 0\n";
  CHECK_THROWS_WITH_AS(TestMachine{many}, doctest::Contains("more than 256"), ConfigError);
}

}  // TEST_SUITE("dcdbas")
