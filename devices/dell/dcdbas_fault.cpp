// dcdbas's failure points (docs/fault-injection.md, core/fault_inject.hpp):
//
//   smi           an SMI raised through smi_request, as the firmware may
//                 fail it: "no_answer" (nothing handles it: the buffer stays
//                 exactly as written, so a libsmbios-style caller still sees
//                 its cbRES1 = -3 "not handled"), "error" (the calling
//                 interface answers cbRES1 = cbres1, -1/-2/-3, and does
//                 nothing else), "short" (the BIOS acts and answers, but only
//                 the first answer_bytes bytes of output[] reach memory; the
//                 rest stays as written).
//   host_control  the APM power command at shutdown: "timeout" (the SMI is
//                 raised but nothing answers: the driver's bounded poll ends
//                 in ETIME), "no_power" (the firmware reports completion but
//                 the power action never happens).
//
// "error" and "short" need the calling-interface buffer at EBX in the SMI
// buffer; when EBX points elsewhere an injected failure is a "no_answer".
// Locking: the callers hold smi_data_lock; FaultInjection's lock is a leaf.

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "core/bytes.hpp"
#include "devices/dell/dcdbas.hpp"

namespace vsysfs::devices {
namespace {

constexpr std::size_t kOutputOffset = 20;  // output[4] in calling_interface_buffer
constexpr std::size_t kOutputBytes = 16;

std::string_view smi_fault_name(core::SmiFault k) {
  switch (k) {
    case core::SmiFault::NoAnswer:
      return "no_answer";
    case core::SmiFault::Error:
      return "error";
    case core::SmiFault::Short:
      return "short";
  }
  return "?";
}

}  // namespace

dcdbas::SmiAnswer Dcdbas::raise_smi(const core::Caller& caller, std::uint8_t code,
                                    std::uint16_t port, const dcdbas::SmiRegisters& regs,
                                    dcdbas::PhysMemory& mem, std::vector<core::EventField>& data) {
  smi_data_lock_.assert_held();
  if (!env_.faults ||
      !env_.faults->should_fail(core::FaultPoint::Smi, &caller, 1, "dcdbas_smi_request"))
    return bios_->outb(code, port, regs, mem);

  const core::FaultSettings s = env_.faults->settings(core::FaultPoint::Smi);
  std::array<std::uint8_t, kOutputBytes> before{};
  const bool have_buffer = mem.read(regs.ebx + kOutputOffset, before);
  const core::SmiFault kind = have_buffer ? s.smi_kind : core::SmiFault::NoAnswer;
  data.emplace_back("fault", smi_fault_name(kind));

  dcdbas::SmiAnswer a;
  switch (kind) {
    case core::SmiFault::NoAnswer:
      a.note = "fault injected: no SMI handler answered";
      return a;
    case core::SmiFault::Error: {
      std::array<std::uint8_t, 4> res1{};
      core::put_le32(res1.data(), static_cast<std::uint32_t>(s.cbres1));
      (void)mem.write(regs.ebx + kOutputOffset, res1);
      a.answered = true;
      a.handler = "calling_interface";
      a.note = "fault injected: cbRES1 " + std::to_string(s.cbres1);
      return a;
    }
    case core::SmiFault::Short: {
      a = bios_->outb(code, port, regs, mem);
      std::array<std::uint8_t, kOutputBytes> after{};
      if (mem.read(regs.ebx + kOutputOffset, after)) {
        // Only the first answer_bytes bytes of the answer arrive.
        for (std::size_t i = s.answer_bytes; i < kOutputBytes; ++i) after[i] = before[i];
        (void)mem.write(regs.ebx + kOutputOffset, after);
      }
      a.note = (a.note.empty() ? "" : a.note + "; ") + "fault injected: answer cut to " +
               std::to_string(s.answer_bytes) + " bytes";
      return a;
    }
  }
  return a;
}

std::optional<core::HostControlFault> Dcdbas::host_control_fault() {
  // The reboot notifier runs for no process: task-filter never lets it fail.
  if (!env_.faults ||
      !env_.faults->should_fail(core::FaultPoint::HostControl, nullptr, 1, "dcdbas_host_control"))
    return std::nullopt;
  return env_.faults->settings(core::FaultPoint::HostControl).hc_kind;
}

void Dcdbas::apm_command(std::uint16_t port) {
  smi_data_lock_.assert_held();
  if (hc_fault_ == core::HostControlFault::Timeout) {
    // The port write happens; no SMI handler takes it.
    env_.log(nullptr, "dcdbas", "outb", "OK",
             {{"port", fmt::format("{:#x}", port)},
              {"value", fmt::format("{:#x}", dcdbas::kEsmApmCmd)},
              {"note", "fault injected: no SMI handler answered"}});
    return;
  }
  outb(dcdbas::kEsmApmCmd, port);
}

bool Dcdbas::power_action_allowed() const {
  smi_data_lock_.assert_held();
  if (hc_fault_ != core::HostControlFault::NoPower) return true;
  env_.log(nullptr, "dcdbas", "power", "fault",
           {{"note", "fault injected: the power action did not happen"}});
  return false;
}

}  // namespace vsysfs::devices
