// The netdevices.rst rules (docs/kernel-semantics.md section 5.5), the TX ring with its
// flow control, the watchdog (5.6) and NAPI, on directly built devices.

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <future>
#include <thread>

#include "core/net_locks.hpp"
#include "devices/net/netdev.hpp"
#include "devices/net/netdev_nic.hpp"
#include "tests/support/test_env.hpp"

using namespace vsysfs;
using devices::NetDevice;
using devices::SkBuff;
using devices::XmitResult;

namespace {

// Two NICs on one cable (and a loopback), built the way the [net] section
// builds them, without the tree.
struct Rig {
  explicit Rig(unsigned ring = 8, bool lltx = false, std::int64_t watchdog_ms = 5000,
               std::uint64_t mmio_seed = 1, bool bql = false) {
    devices::VnicConfig nic;
    nic.bql = bql;
    nic.mmio_seed = mmio_seed;
    nic.ring_size = ring;
    nic.speed = 1000;
    nic.ncpus = 2;
    for (int i = 0; i < 2; ++i) {
      devices::NetDeviceConfig cfg;
      cfg.name = i == 0 ? "eth0" : "eth1";
      cfg.dev_addr = {0x52, 0x54, 0, 0, 0, static_cast<std::uint8_t>(i)};
      cfg.broadcast = std::vector<std::uint8_t>(6, 0xff);
      cfg.lltx = lltx;
      cfg.watchdog_timeo_ms = watchdog_ms;
      hw[i] = std::make_shared<devices::VnicHardware>(env, cfg.name, nic);
      drv[i] = std::make_shared<devices::VnicDriver>(env, hw[i], nic);
      hw[i]->attach(drv[i].get());
      dev[i] = std::make_shared<NetDevice>(env, cfg, i + 2, drv[i]);
      drv[i]->attach(dev[i].get());
    }
    hw[0]->set_peer(hw[1].get());
    hw[1]->set_peer(hw[0].get());
    devices::NetDeviceConfig lcfg;
    lcfg.name = "lo";
    lcfg.kind = "loopback";
    lcfg.lltx = true;
    lcfg.dev_addr = std::vector<std::uint8_t>(6, 0);
    lo_drv = std::make_shared<devices::LoopbackDriver>();
    lo = std::make_shared<NetDevice>(env, lcfg, 1, lo_drv);
    core::RtnlLock rtnl;
    for (auto& d : dev) REQUIRE(d->dev_change_flags(d->flags() | devices::IFF_UP));
    REQUIRE(lo->dev_change_flags(lo->flags() | devices::IFF_UP));
  }
  ~Rig() {
    for (auto& h : hw) h->quiesce();
    for (auto& h : hw) h->detach();
    for (auto& d : dev) d->unregister_netdevice();
    lo->unregister_netdevice();
  }
  devices::RtnlLinkStats64 stats(NetDevice& d) {
    core::ReadLock lock(core::dev_base_lock());
    return d.dev_get_stats();
  }
  XmitResult send(unsigned n, std::uint32_t len = 64, unsigned cpu = 0) {
    XmitResult r = XmitResult::Ok;
    for (unsigned i = 0; i < n && r == XmitResult::Ok; ++i) {
      SkBuff skb;
      skb.len = len;
      skb.id = ++id;
      r = dev[0]->dev_hard_start_xmit(skb, cpu);
    }
    return r;
  }
  std::size_t events(std::string_view device, std::string_view what) {
    std::size_t n = 0;
    for (auto& e : env.events.snapshot()) n += (e.device == device && e.what == what);
    return n;
  }

  testing::TestEnv env;
  std::shared_ptr<devices::VnicHardware> hw[2];
  std::shared_ptr<devices::VnicDriver> drv[2];
  std::shared_ptr<NetDevice> dev[2];
  std::shared_ptr<devices::LoopbackDriver> lo_drv;
  std::shared_ptr<NetDevice> lo;
  std::uint64_t id = 0;
};

// Runs fn on another thread while this one holds `mu`; true if it finished.
template <typename Lockable, typename Fn>
bool completes_while_held(Lockable& mu, Fn fn) {
  std::promise<void> held, release;
  std::thread holder([&] {
    mu.lock();
    held.set_value();
    release.get_future().wait();
    mu.unlock();
  });
  held.get_future().wait();
  auto done = std::async(std::launch::async, fn);
  // A deadlock never becomes ready; 10 s is only a bound for a failing run.
  const bool ok = done.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  release.set_value();
  holder.join();
  done.wait();
  return ok;
}

}  // namespace

TEST_SUITE("netdev") {

TEST_CASE("get_stats under dev_base_lock completes while xmit holds netif_tx_lock") {
  Rig rig;
  REQUIRE(rig.send(3) == XmitResult::Ok);
  rig.env.advance_ms(1);
  CHECK(completes_while_held(rig.dev[0]->netif_tx_lock(), [&] {
    return rig.stats(*rig.dev[0])[devices::kTxPackets];
  }));
  CHECK(rig.stats(*rig.dev[0])[devices::kTxPackets] == 3);
  // And through the file, as a reader would.
  testing::TestMachine m(R"([net]
[[net.interface]]
name = "eth0"
pci = "0000:00:03.0"
)");
  auto node = m.tree.find("devices/pci0000:00/0000:00:03.0/net/eth0/mtu");
  auto* eth0 = static_cast<NetDevice*>(node->dev);
  std::string got;
  CHECK(completes_while_held(eth0->netif_tx_lock(), [&] {
    got = m.read("devices/pci0000:00/0000:00:03.0/net/eth0/statistics/tx_packets");
  }));
  CHECK(got == "0\n");
}

TEST_CASE("set_multicast_list runs under netif_tx_lock: it waits for a transmit") {
  Rig rig(4096);
  std::atomic<bool> entered{false};
  auto& tx_lock = rig.dev[0]->netif_tx_lock();
  std::promise<void> held, release;
  std::thread xmit([&] {  // stands for a CPU inside hard_start_xmit
    core::MutexLock lock(tx_lock);
    held.set_value();
    release.get_future().wait();
  });
  held.get_future().wait();
  auto mc = std::async(std::launch::async, [&] {
    core::RtnlLock rtnl;
    rig.dev[0]->dev_set_rx_mode();
    entered = true;
  });
  // Not a timing assertion: a correct implementation can never finish here.
  CHECK(mc.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  CHECK_FALSE(entered.load());
  release.set_value();
  xmit.join();
  mc.wait();
  CHECK(entered.load());
}

TEST_CASE("xmit and set_multicast_list never overlap (netif_tx_lock, and the LLTX lock)") {
  for (bool lltx : {false, true}) {
    CAPTURE(lltx);
    Rig rig(8192, lltx);
    std::atomic<bool> go{false};
    std::thread tx([&] {
      while (!go) std::this_thread::yield();
      for (unsigned i = 0; i < 3000; ++i) {
        SkBuff skb;
        skb.id = i + 1;
        while (rig.dev[0]->dev_hard_start_xmit(skb, i % 2) == XmitResult::Locked) {
        }
      }
    });
    std::thread mc([&] {
      while (!go) std::this_thread::yield();
      for (unsigned i = 0; i < 3000; ++i) {
        core::RtnlLock rtnl;
        rig.dev[0]->dev_set_rx_mode();
      }
    });
    go = true;
    tx.join();
    mc.join();
    CHECK(rig.drv[0]->exclusion_violations() == 0);
    CHECK(rig.drv[0]->ring_in_use() == 3000);
  }
}

TEST_CASE("LLTX: contention on the driver's lock gives NETDEV_TX_LOCKED, a retry succeeds") {
  Rig rig(8, /*lltx=*/true);
  XmitResult first = XmitResult::Ok;
  CHECK(completes_while_held(rig.drv[0]->priv_lock(), [&] { first = rig.send(1); }));
  CHECK(first == XmitResult::Locked);
  CHECK(rig.dev[0]->tx_locked_count() == 1);
  CHECK(rig.events("eth0", "xmit") == 1);
  CHECK(rig.drv[0]->ring_in_use() == 0);  // nothing was queued
  CHECK(rig.send(1) == XmitResult::Ok);    // the retry
  CHECK(rig.drv[0]->ring_in_use() == 1);
  rig.env.advance_ms(1);
  CHECK(rig.stats(*rig.dev[0])[devices::kTxPackets] == 1);
}

TEST_CASE("a full ring stops the queue; completions at the link rate wake it") {
  Rig rig(8);
  CHECK(rig.send(7) == XmitResult::Ok);
  CHECK_FALSE(rig.dev[0]->netif_queue_stopped());
  CHECK(rig.send(1) == XmitResult::Ok);  // the 8th fills the ring
  CHECK(rig.dev[0]->netif_queue_stopped());
  CHECK(rig.send(1) == XmitResult::QueueStopped);  // the driver is not entered
  CHECK(rig.dev[0]->tx_busy_count() == 0);
  // 64-byte frames at 1000 Mb/s: (64 + 24) * 8 bits = 704 ns each.
  rig.env.clock.advance(std::chrono::nanoseconds(704 * 2 - 1));
  CHECK(rig.stats(*rig.dev[0])[devices::kTxPackets] == 1);
  CHECK(rig.dev[0]->netif_queue_stopped());  // 1 free < a quarter of 8
  rig.env.clock.advance(std::chrono::nanoseconds(1));
  CHECK(rig.stats(*rig.dev[0])[devices::kTxPackets] == 2);
  CHECK_FALSE(rig.dev[0]->netif_queue_stopped());  // 2 free: woken
  rig.env.advance_ms(1);
  const auto tx = rig.stats(*rig.dev[0]);
  const auto rx = rig.stats(*rig.dev[1]);
  CHECK(tx[devices::kTxPackets] == 8);
  CHECK(tx[devices::kTxBytes] == 8 * 64);
  CHECK(rx[devices::kRxPackets] == 8);
  CHECK(rx[devices::kRxBytes] == 8 * 64);
}

TEST_CASE("NETDEV_TX_BUSY is counted and logged as a flow-control bug") {
  Rig rig(4);
  rig.drv[0]->set_skip_queue_stop(true);
  CHECK(rig.send(4) == XmitResult::Ok);
  CHECK_FALSE(rig.dev[0]->netif_queue_stopped());  // the bug: queue awake, ring full
  CHECK(rig.send(1) == XmitResult::Busy);
  CHECK(rig.dev[0]->tx_busy_count() == 1);
  bool logged = false;
  for (auto& e : rig.env.events.snapshot())
    logged = logged || (e.device == "eth0" && e.result == "NETDEV_TX_BUSY" &&
                        e.field("bug").find("flow control") != std::string::npos);
  CHECK(logged);
  CHECK(rig.drv[0]->ring_in_use() == 4);  // the skb was not put in the ring
}

TEST_CASE("watchdog: tx_timeout exactly watchdog_timeo after the stall; the ring is reset") {
  Rig rig(8);
  rig.env.advance_ms(1234);
  rig.hw[0]->set_hang_tx(true);
  const auto stall = rig.env.clock.now();
  CHECK(rig.send(8) == XmitResult::Ok);
  CHECK(rig.dev[0]->netif_queue_stopped());
  rig.env.clock.advance(std::chrono::seconds(5) - std::chrono::nanoseconds(1));
  CHECK(rig.dev[0]->trans_timeout_count() == 0);
  rig.env.clock.advance(std::chrono::nanoseconds(1));
  CHECK(rig.dev[0]->trans_timeout_count() == 1);
  std::vector<core::Event> ev;
  for (auto& e : rig.env.events.snapshot())
    if (e.device == "eth0" && e.what == "tx_timeout") ev.push_back(e);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].time == stall + std::chrono::seconds(5));
  CHECK(ev[0].field("timeout_ms") == "5000");
  CHECK(rig.events("eth0", "tx_ring_reset") == 1);
  CHECK(rig.drv[0]->ring_resets() == 1);
  CHECK_FALSE(rig.dev[0]->netif_queue_stopped());  // reset woke it
  const auto s = rig.stats(*rig.dev[0]);
  CHECK(s[devices::kTxErrors] == 1);
  CHECK(s[devices::kTxDropped] == 8);
  CHECK(s[devices::kTxPackets] == 0);
  // The reset cleared the hang: traffic flows again, no second timeout.
  CHECK(rig.send(3) == XmitResult::Ok);
  rig.env.advance_ms(20000);
  CHECK(rig.stats(*rig.dev[0])[devices::kTxPackets] == 3);
  CHECK(rig.dev[0]->trans_timeout_count() == 1);
}

TEST_CASE("watchdog: quiet without carrier, honours watchdog_timeo") {
  Rig rig(4, false, 2000);
  rig.hw[0]->set_hang_tx(true);
  CHECK(rig.send(4) == XmitResult::Ok);
  rig.hw[1]->set_cable(false);  // link lost: no carrier, no timeout
  CHECK_FALSE(rig.dev[0]->netif_carrier_ok());
  rig.env.advance_ms(10000);
  CHECK(rig.dev[0]->trans_timeout_count() == 0);
  rig.hw[1]->set_cable(true);  // carrier back: the watchdog is re-armed
  CHECK(rig.dev[0]->netif_carrier_ok());
  rig.env.advance_ms(1999);
  CHECK(rig.dev[0]->trans_timeout_count() == 0);
  rig.env.advance_ms(1);
  CHECK(rig.dev[0]->trans_timeout_count() == 1);
}

TEST_CASE("NAPI: poll runs with budget 64 while RX_SCHED is held") {
  Rig rig;
  for (unsigned i = 0; i < 200; ++i) {
    SkBuff skb;
    skb.len = 100;
    CHECK(rig.lo->dev_hard_start_xmit(skb, 0) == XmitResult::Ok);
  }
  CHECK(rig.lo->napi_scheduled());
  CHECK(rig.lo_drv->delivered() == 0);
  rig.env.clock.advance(core::Nanos{0});  // the softirq runs
  CHECK(rig.lo_drv->delivered() == 200);
  CHECK(rig.lo->napi_polls() == 4);  // 64 + 64 + 64 + 8
  CHECK_FALSE(rig.lo->napi_scheduled());
  CHECK(rig.stats(*rig.lo)[devices::kRxPackets] == 200);
  CHECK(rig.stats(*rig.lo)[devices::kTxBytes] == 200 * 100);
}

TEST_CASE("dev_close with a poll pending: stop sees NAPI stopped, nothing hangs") {
  Rig rig;
  SkBuff skb;
  CHECK(rig.lo->dev_hard_start_xmit(skb, 0) == XmitResult::Ok);
  CHECK(rig.lo->napi_scheduled());
  {
    core::RtnlLock rtnl;
    CHECK(rig.lo->dev_change_flags(rig.lo->flags() & ~devices::IFF_UP));
  }
  CHECK_FALSE(rig.lo->netif_running());
  rig.env.advance_ms(1);
  CHECK(rig.lo_drv->delivered() == 0);
  CHECK(rig.lo->dev_hard_start_xmit(skb, 0) == XmitResult::NotRunning);
}

TEST_CASE("drop_rx fault: the receiver drops and counts") {
  Rig rig(16);
  rig.drv[1]->set_drop_rx(3);
  CHECK(rig.send(10) == XmitResult::Ok);
  rig.env.advance_ms(1);
  const auto rx = rig.stats(*rig.dev[1]);
  CHECK(rx[devices::kRxPackets] == 7);
  CHECK(rx[devices::kRxDropped] == 3);
  CHECK(rig.stats(*rig.dev[0])[devices::kTxPackets] == 10);
}

TEST_CASE("do_ioctl runs under rtnl: MII registers follow the link") {
  Rig rig;
  auto bmsr = rig.dev[0]->dev_ioctl(0x8948, 1);
  REQUIRE(bmsr);
  CHECK((*bmsr & 0x0004) != 0);
  rig.hw[0]->set_cable(false);
  bmsr = rig.dev[0]->dev_ioctl(0x8948, 1);
  REQUIRE(bmsr);
  CHECK((*bmsr & 0x0004) == 0);
  CHECK(rig.dev[0]->dev_ioctl(0x89f0, 0).error() == core::Errno{EOPNOTSUPP});
  CHECK(rig.lo->dev_ioctl(0x8948, 1).error() == core::Errno{EOPNOTSUPP});
}

TEST_CASE("doorbell ordering over seeded runs: the flushing read keeps it monotonic") {
  std::uint64_t posted_backwards = 0, flush_backwards = 0, runs_with_error = 0;
  constexpr std::uint64_t kRuns = 300;
  for (std::uint64_t seed = 0; seed < kRuns; ++seed) {
    for (bool flush : {true, false}) {
      Rig rig(64, false, 5000, seed);
      rig.drv[0]->set_flush_reads(flush);
      for (unsigned i = 0; i < 24; ++i) {  // two CPUs take netif_tx_lock in turn
        SkBuff skb;
        skb.id = i + 1;
        REQUIRE(rig.dev[0]->dev_hard_start_xmit(skb, i % 2) == XmitResult::Ok);
      }
      rig.env.advance_ms(1);
      const auto b = rig.hw[0]->doorbell_backwards();
      (flush ? flush_backwards : posted_backwards) += b;
      if (!flush) runs_with_error += b != 0;
      // Every frame still goes out: the device ignores a stale doorbell.
      CHECK(rig.stats(*rig.dev[0])[devices::kTxPackets] == 24);
      CHECK(rig.stats(*rig.dev[1])[devices::kRxPackets] == 24);
    }
  }
  MESSAGE("posted doorbells moved backwards " << posted_backwards << " times in "
                                              << runs_with_error << " of " << kRuns << " runs");
  CHECK(flush_backwards == 0);
  CHECK(posted_backwards > 0);
}

#if VSYSFS_DEBUG_CHECKS
TEST_CASE("debug build: a hook entered without its lock aborts") {
  Rig rig;
  auto dies = [](auto fn) {
    const pid_t pid = fork();
    if (pid == 0) {
      std::signal(SIGABRT, SIG_DFL);
      if (!std::freopen("/dev/null", "w", stderr)) _exit(3);
      fn();
      _exit(0);
    }
    // Bounded: a child that hangs instead of aborting (a sanitizer runtime
    // deadlocked after fork) fails the check instead of the whole run.
    int status = 0;
    for (int i = 0; i < 1000 && waitpid(pid, &status, WNOHANG) == 0; ++i) usleep(10000);
    if (waitpid(pid, &status, WNOHANG) == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return false;
    }
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  };
  SkBuff skb;
  CHECK(dies([&] { (void)rig.drv[0]->hard_start_xmit(*rig.dev[0], skb, 0); }));  // no netif_tx_lock
  CHECK(dies([&] { rig.drv[0]->tx_timeout(*rig.dev[0]); }));
  CHECK(dies([&] { rig.drv[0]->set_multicast_list(*rig.dev[0]); }));
  CHECK(dies([&] { (void)rig.drv[0]->open(*rig.dev[0]); }));  // no rtnl
  CHECK(dies([&] { (void)rig.drv[0]->get_stats(*rig.dev[0]); }));  // no dev_base_lock
  CHECK(dies([&] { (void)rig.drv[0]->poll(*rig.dev[0], 64); }));  // RX_SCHED not ours
  CHECK_FALSE(dies([&] {
    core::MutexLock lock(rig.dev[0]->netif_tx_lock());
    (void)rig.drv[0]->hard_start_xmit(*rig.dev[0], skb, 0);
  }));
}
#endif

}  // TEST_SUITE

TEST_SUITE("netdev") {

TEST_CASE("stores on an unregistered device return 0, shows EINVAL (kernel quirk)") {
  Rig rig;
  rig.dev[0]->unregister_netdevice();
  CHECK(testing::store(*rig.dev[0], "mtu", "1000\n") == 0);
  CHECK(testing::show(*rig.dev[0], "mtu") == "<EINVAL>");
  CHECK(testing::show(*rig.dev[0], "statistics/tx_packets") == "<EINVAL>");
  CHECK(rig.dev[0]->mtu() == 1500);
}

}  // TEST_SUITE

TEST_SUITE("netdev") {

TEST_CASE("BQL: the limit starts at 0, grows on starvation, stops and wakes the queue") {
  Rig rig(64, false, 5000, 1, /*bql=*/true);
  auto& dev = *rig.dev[0];
  CHECK(dev.dql(0).limit == 0);
  CHECK(rig.send(1) == XmitResult::Ok);
  CHECK(dev.netif_queue_stopped());         // over the limit: STACK_XOFF
  CHECK_FALSE(dev.netif_tx_queue_stopped());  // the ring has room
  CHECK(dev.dql(0).inflight() == 64);
  CHECK(rig.send(1) == XmitResult::QueueStopped);
  rig.env.advance_ms(1);  // completion: the queue starved while over the limit
  CHECK(dev.dql(0).limit == 64);
  CHECK(dev.dql(0).inflight() == 0);
  CHECK_FALSE(dev.netif_queue_stopped());
  CHECK(rig.send(1) == XmitResult::Ok);
  CHECK_FALSE(dev.netif_queue_stopped());  // 64 of 64 allowed
  CHECK(rig.send(1) == XmitResult::Ok);
  CHECK(dev.netif_queue_stopped());
  rig.env.advance_ms(1);
  CHECK(dev.dql(0).limit == 128);
  CHECK(rig.stats(*rig.dev[1])[devices::kRxPackets] == 3);
  // limit_min holds the limit up.
  dev.update_dql(0, [](devices::Dql& d) { d.min_limit = 10000; });
  CHECK(rig.send(1) == XmitResult::Ok);
  rig.env.advance_ms(1);
  CHECK(dev.dql(0).limit == 10000);
  for (int i = 0; i < 50; ++i) CHECK(rig.send(1) == XmitResult::Ok);
  CHECK_FALSE(dev.netif_queue_stopped());  // 3200 bytes < 10000, 50 of 64 slots
}

TEST_CASE("BQL: a stalled sender resumes on completions (the wake hook runs)") {
  Rig rig(256, false, 5000, 1, /*bql=*/true);
  int woken = 0;
  rig.dev[0]->set_wake_hook([&] { ++woken; });
  CHECK(rig.send(1) == XmitResult::Ok);
  CHECK(rig.dev[0]->netif_queue_stopped());
  rig.env.advance_ms(1);
  CHECK(woken == 1);
  rig.dev[0]->set_wake_hook(nullptr);
}

}  // TEST_SUITE

// --- K/fail/net_xmit (docs/fault-injection.md section 3.6) ----------------------------

namespace {
void arm_xmit(testing::TestEnv& env, core::NetXmitFault kind, int times = 1) {
  env.faults.set(core::FaultPoint::NetXmit, &core::FaultSettings::xmit_kind, kind);
  env.faults.set(core::FaultPoint::NetXmit, &core::FaultSettings::times, times);
  env.faults.set(core::FaultPoint::NetXmit, &core::FaultSettings::probability, 100UL);
}
}  // namespace

TEST_CASE("net_xmit drop: the driver frees the frame, tx_dropped moves, NETDEV_TX_OK") {
  Rig rig;
  arm_xmit(rig.env, core::NetXmitFault::Drop);
  CHECK(rig.send(1) == XmitResult::Ok);
  CHECK(rig.dev[0]->core_tx_dropped() == 1);
  CHECK(rig.send(2) == XmitResult::Ok);  // times ran out: the next two are sent
  rig.env.advance_ms(100);
  const auto s = rig.stats(*rig.dev[0]);
  CHECK(s[devices::kTxDropped] == 1);
  CHECK(s[devices::kTxPackets] == 2);
  CHECK(rig.stats(*rig.dev[1])[devices::kRxPackets] == 2);
  CHECK(rig.env.faults.injected(core::FaultPoint::NetXmit) == 1);
  CHECK(rig.events("eth0", "xmit") == 1);
}

TEST_CASE("net_xmit busy: NETDEV_TX_BUSY, the frame stays with the caller, tx_busy counts") {
  Rig rig;
  arm_xmit(rig.env, core::NetXmitFault::Busy, 2);
  CHECK(rig.send(1) == XmitResult::Busy);
  CHECK(rig.send(1) == XmitResult::Busy);
  CHECK(rig.dev[0]->tx_busy_count() == 2);
  CHECK(rig.send(1) == XmitResult::Ok);  // the retry goes through
  rig.env.advance_ms(100);
  const auto s = rig.stats(*rig.dev[0]);
  CHECK(s[devices::kTxPackets] == 1);
  CHECK(s[devices::kTxDropped] == 0);
  CHECK_FALSE(rig.dev[0]->netif_queue_stopped());
}

TEST_CASE("net_xmit hang: the queue stays stopped, the watchdog fires after watchdog_timeo") {
  Rig rig(8, false, 2000);
  arm_xmit(rig.env, core::NetXmitFault::Hang);
  const auto start = rig.env.clock.now();
  CHECK(rig.send(1) == XmitResult::Ok);
  CHECK(rig.dev[0]->netif_queue_stopped());
  CHECK(rig.dev[0]->xmit_hung());
  rig.env.advance_ms(100);  // the frame completes; the completion does not wake the queue
  CHECK(rig.dev[0]->netif_queue_stopped());
  CHECK(rig.send(1) == XmitResult::QueueStopped);
  rig.env.advance_ms(1899);
  CHECK(rig.dev[0]->trans_timeout_count() == 0);
  rig.env.advance_ms(1);
  CHECK(rig.dev[0]->trans_timeout_count() == 1);
  std::vector<core::Event> ev;
  for (auto& e : rig.env.events.snapshot())
    if (e.device == "eth0" && e.what == "tx_timeout") ev.push_back(e);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].time == start + std::chrono::seconds(2));
  CHECK(rig.events("eth0", "tx_ring_reset") == 1);
  CHECK_FALSE(rig.dev[0]->xmit_hung());
  CHECK_FALSE(rig.dev[0]->netif_queue_stopped());  // the reset woke it
  CHECK(rig.send(1) == XmitResult::Ok);
}

TEST_CASE("net_xmit hang on lo (no ndo_tx_timeout): stuck until the interface goes down") {
  Rig rig;
  arm_xmit(rig.env, core::NetXmitFault::Hang);
  SkBuff skb;
  CHECK(rig.lo->dev_hard_start_xmit(skb, 0) == XmitResult::Ok);
  rig.env.advance_ms(20000);
  CHECK(rig.lo->dev_hard_start_xmit(skb, 0) == XmitResult::QueueStopped);
  core::RtnlLock rtnl;
  REQUIRE(rig.lo->dev_change_flags(rig.lo->flags() & ~devices::IFF_UP));
  REQUIRE(rig.lo->dev_change_flags(rig.lo->flags() | devices::IFF_UP));
  CHECK_FALSE(rig.lo->netif_queue_stopped());
  CHECK(rig.lo->dev_hard_start_xmit(skb, 0) == XmitResult::Ok);
}

TEST_CASE("net_xmit ifaces: only the listed interfaces fail") {
  Rig rig;
  rig.env.faults.set_paths(core::FaultPoint::NetXmit, {"eth1"});
  arm_xmit(rig.env, core::NetXmitFault::Drop, -1);
  CHECK(rig.send(3) == XmitResult::Ok);
  CHECK(rig.dev[0]->core_tx_dropped() == 0);
  SkBuff skb;
  CHECK(rig.dev[1]->dev_hard_start_xmit(skb, 0) == XmitResult::Ok);
  CHECK(rig.dev[1]->core_tx_dropped() == 1);
  CHECK(rig.env.faults.injected(core::FaultPoint::NetXmit) == 1);
}

// --- K/fail/net_open ---------------------------------------------------------------------

TEST_CASE("net_open: IFF_UP gets the point's errno (ENOMEM by default), the device stays down") {
  Rig rig;
  auto& fi = rig.env.faults;
  CHECK(fi.settings(core::FaultPoint::NetOpen).error == ENOMEM);
  fi.set_paths(core::FaultPoint::NetOpen, {"eth0"});
  fi.set(core::FaultPoint::NetOpen, &core::FaultSettings::probability, 100UL);
  core::RtnlLock rtnl;
  auto& d = *rig.dev[0];
  REQUIRE(d.dev_change_flags(d.flags() & ~devices::IFF_UP));
  const auto st = d.dev_change_flags(d.flags() | devices::IFF_UP);
  REQUIRE_FALSE(st);
  CHECK(st.error().value() == ENOMEM);
  CHECK_FALSE(d.netif_running());
  CHECK((d.flags() & devices::IFF_UP) == 0);
  CHECK(d.operstate() == devices::Operstate::Down);
  CHECK(fi.injected(core::FaultPoint::NetOpen) == 1);
  // eth1 is not in the list; times (1) is spent for eth0: both come up.
  auto& e1 = *rig.dev[1];
  REQUIRE(e1.dev_change_flags(e1.flags() & ~devices::IFF_UP));
  CHECK(e1.dev_change_flags(e1.flags() | devices::IFF_UP));
  CHECK(d.dev_change_flags(d.flags() | devices::IFF_UP));
  CHECK(d.netif_running());
  fi.set(core::FaultPoint::NetOpen, &core::FaultSettings::error, EBUSY);
  fi.set(core::FaultPoint::NetOpen, &core::FaultSettings::times, 1);
  REQUIRE(d.dev_change_flags(d.flags() & ~devices::IFF_UP));
  const auto st2 = d.dev_change_flags(d.flags() | devices::IFF_UP);
  REQUIRE_FALSE(st2);
  CHECK(st2.error().value() == EBUSY);
}

TEST_CASE("net_rx: drop counts rx_dropped, corrupt rx_crc_errors and rx_errors, at the receiver") {
  Rig rig;
  auto& fi = rig.env.faults;
  const auto p = core::FaultPoint::NetRx;
  fi.set_paths(p, {"eth1"});
  fi.set(p, &core::FaultSettings::times, 2);
  fi.set(p, &core::FaultSettings::probability, 100UL);
  CHECK(rig.send(3) == XmitResult::Ok);
  rig.env.advance_ms(100);
  auto rx = rig.stats(*rig.dev[1]);
  CHECK(rx[devices::kRxDropped] == 2);
  CHECK(rx[devices::kRxPackets] == 1);
  CHECK(rx[devices::kRxErrors] == 0);
  CHECK(rig.stats(*rig.dev[0])[devices::kTxPackets] == 3);  // the sender sent them all
  fi.set(p, &core::FaultSettings::rx_kind, core::NetRxFault::Corrupt);
  fi.set(p, &core::FaultSettings::times, 1);
  CHECK(rig.send(2) == XmitResult::Ok);
  rig.env.advance_ms(100);
  rx = rig.stats(*rig.dev[1]);
  CHECK(rx[devices::kRxCrcErrors] == 1);
  CHECK(rx[devices::kRxErrors] == 1);
  CHECK(rx[devices::kRxDropped] == 2);
  CHECK(rx[devices::kRxPackets] == 2);
  CHECK(rig.events("eth1", "rx") == 3);
  // The ifaces list names the receiver: eth0 receiving is never failed.
  fi.set(p, &core::FaultSettings::times, -1);
  CHECK(rig.send(1) == XmitResult::Ok);
  rig.env.advance_ms(100);
  CHECK(rig.stats(*rig.dev[1])[devices::kRxCrcErrors] == 2);
  CHECK(fi.injected(p) == 4);
}

TEST_CASE("link_flap: a flap drops the link on both cabled ends; the carrier follows") {
  Rig rig;
  auto& fi = rig.env.faults;
  const auto p = core::FaultPoint::LinkFlap;
  fi.add_flap_target("eth0", [&rig](bool down) { rig.hw[0]->set_flap_down(down); });
  fi.set(p, &core::FaultSettings::times, -1);
  fi.set(p, &core::FaultSettings::probability, 100UL);
  fi.set(p, &core::FaultSettings::down_ms, 50u);
  fi.set(p, &core::FaultSettings::period_ms, 100u);
  const int downs = rig.dev[0]->carrier_down_count();
  REQUIRE(fi.start_flaps(1));
  rig.env.advance_ms(100);
  CHECK_FALSE(rig.dev[0]->netif_carrier_ok());
  CHECK_FALSE(rig.dev[1]->netif_carrier_ok());
  CHECK(rig.hw[0]->cable());  // the flap is not the cable
  CHECK(rig.dev[0]->carrier_down_count() == downs + 1);
  rig.env.advance_ms(50);
  CHECK(rig.dev[0]->netif_carrier_ok());
  CHECK(rig.dev[1]->netif_carrier_ok());
  // A pulled cable keeps the link down when the flap ends.
  REQUIRE(fi.start_flaps(1));
  rig.env.advance_ms(100);
  rig.hw[0]->set_cable(false);
  rig.env.advance_ms(50);
  CHECK_FALSE(rig.dev[0]->netif_carrier_ok());
  rig.hw[0]->set_cable(true);
  CHECK(rig.dev[0]->netif_carrier_ok());
  fi.remove_flap_target("eth0");
}
