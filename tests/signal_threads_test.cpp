// Tests for weakref::signal across threads (run under TSan too): emissions, connections,
// disconnections and object deaths at once on several threads; const members from two
// threads; the same connection disconnected from two threads; connections outliving a signal
// destroyed on another thread; two threads connecting to a moved-from signal.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "support/alongside.hpp"
#include "weakref/signal.hpp"

namespace {

using weakref::connection;
using weakref::scoped_connection;
using weakref::signal;

// An object that records whether a slot ever ran on it while it was dead or dying.
struct watched {
  explicit watched(std::atomic<int>& violations) : violations(&violations) {}
  ~watched() { alive.store(false); }
  void on(int& n) {
    if (!alive.load()) violations->fetch_add(1);
    ++n;
    calls.fetch_add(1, std::memory_order_relaxed);
  }
  std::atomic<bool> alive{true};
  std::atomic<int>* violations;
  std::atomic<int> calls{0};
};

TEST(signal_threads, emit_connect_disconnect_and_deaths_on_four_threads) {
  constexpr int emits_per_thread = 2000;
  constexpr int rounds = 500;
  std::atomic<int> violations{0};
  std::atomic<int> permanent_calls{0};
  signal<void(int&)> sig;
  auto anchor = weakref::make_shared<watched>(violations);
  sig.connect([&](int&) { permanent_calls.fetch_add(1, std::memory_order_relaxed); });
  sig.connect(anchor, &watched::on);

  std::atomic<bool> go{false};
  auto emitter = [&] {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < emits_per_thread; ++i) {
      int n = 0;
      sig(n);
      if (n < 1) violations.fetch_add(1);  // the anchor's slot always runs
    }
  };
  auto churner = [&] {  // connects and disconnects callables and scoped connections
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < rounds; ++i) {
      connection c = sig.connect([](int& n) { ++n; });
      scoped_connection s = sig.connect([](int& n) { ++n; });
      c.disconnect();
      if (i % 50 == 0) {
        std::vector<scoped_connection> many;
        for (int j = 0; j < 40; ++j) many.push_back(sig.connect([](int&) {}));
      }
    }
  };
  auto killer = [&] {  // objects connected, then dying on this thread
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < rounds; ++i) {
      auto obj = weakref::make_shared<watched>(violations);
      sig.connect(obj, &watched::on);
      sig.connect(obj, [](watched& w, int& n) { w.on(n); });
      if (i % 3 == 0) std::this_thread::yield();
    }
  };
  std::thread threads[] = {std::thread(emitter), std::thread(emitter), std::thread(churner),
                           std::thread(killer)};
  go.store(true);
  for (auto& t : threads) t.join();

  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(permanent_calls.load(), 2 * emits_per_thread);
  EXPECT_EQ(anchor->calls.load(), 2 * emits_per_thread);
  EXPECT_EQ(sig.size(), 2u);
  int n = 0;
  sig(n);
  EXPECT_EQ(n, 1);
}

TEST(signal_threads, objects_dying_on_other_threads_during_emissions) {
  constexpr int objects_per_thread = 300;
  std::atomic<int> violations{0};
  signal<void(int&)> sig;
  std::vector<std::vector<std::shared_ptr<watched>>> owned(2);
  for (auto& batch : owned) {
    for (int i = 0; i < objects_per_thread; ++i) {
      batch.push_back(weakref::make_shared<watched>(violations));
      sig.connect(batch.back(), &watched::on);
    }
  }
  EXPECT_EQ(sig.size(), 2u * objects_per_thread);
  std::atomic<int> done{0};
  std::thread emitter([&] {
    while (done.load() < 2) {
      int n = 0;
      sig(n);
    }
  });
  auto kill = [&done](std::vector<std::shared_ptr<watched>>& batch) {
    for (auto& obj : batch) obj.reset();
    done.fetch_add(1);
  };
  std::thread killers[] = {std::thread(kill, std::ref(owned[0])),
                           std::thread(kill, std::ref(owned[1]))};
  for (auto& t : killers) t.join();
  emitter.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(sig.size(), 0u);
  EXPECT_TRUE(sig.empty());
  int n = 0;
  sig(n);
  EXPECT_EQ(n, 0);
}

TEST(signal_threads, size_and_empty_from_two_threads_while_another_connects) {
  signal<void()> sig;
  auto keep = sig.connect([] {});
  std::atomic<int> bad{0};
  test_support::run_alongside(
      2,
      [&] {
        auto n = sig.size();
        if (n < 1 || n > 65) bad.fetch_add(1);
        if (sig.empty()) bad.fetch_add(1);
      },
      200,
      [&](int) {
        std::vector<connection> batch;
        for (int i = 0; i < 64; ++i) batch.push_back(sig.connect([] {}));
        for (auto& c : batch) c.disconnect();
      });
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(sig.size(), 1u);
}

// A moved-from signal is empty and usable, from several threads at once like any other: two
// threads connecting race to bring its state back, and neither slot is lost.
TEST(signal_threads, two_threads_connect_to_a_moved_from_signal) {
  for (int round = 0; round < 200; ++round) {
    signal<void()> sig;
    signal<void()> moved_to(std::move(sig));
    std::atomic<int> calls{0};
    std::atomic<int> ready{0};
    std::vector<connection> connections(2);
    auto connect = [&](std::size_t i) {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      if (i == 0) {
        EXPECT_LE(sig.size(), 1u);  // a reader beside the connections
      }
      connections[i] = sig.connect([&calls] { calls.fetch_add(1); });
    };
    std::thread first(connect, 0);
    std::thread second(connect, 1);
    first.join();
    second.join();
    sig();
    ASSERT_EQ(calls.load(), 2) << "round " << round;
    ASSERT_EQ(sig.size(), 2u) << "round " << round;
  }
}

TEST(signal_threads, one_slot_disconnected_from_two_threads_counts_once) {
  signal<void()> sig;
  std::vector<connection> connections;
  for (int i = 0; i < 500; ++i) connections.push_back(sig.connect([] {}));
  auto disconnect_all = [&] {
    for (auto c : connections) c.disconnect();  // copies: each thread its own handles
  };
  std::thread a(disconnect_all), b(disconnect_all);
  a.join();
  b.join();
  EXPECT_EQ(sig.size(), 0u);
  sig.connect([] {});
  EXPECT_EQ(sig.size(), 1u);
}

TEST(signal_threads, an_emission_started_after_disconnect_returned_does_not_call_the_slot) {
  signal<void()> sig;
  std::atomic<int> calls{0};
  for (int round = 0; round < 200; ++round) {
    connection c = sig.connect([&] { calls.fetch_add(1); });
    std::atomic<bool> disconnected{false};
    std::thread t([&] {
      c.disconnect();
      disconnected.store(true);
    });
    while (!disconnected.load()) std::this_thread::yield();
    int before = calls.load();
    sig();
    EXPECT_EQ(calls.load(), before);
    t.join();
  }
  EXPECT_EQ(calls.load(), 0);
}

TEST(signal_threads, connections_outlive_a_signal_destroyed_on_another_thread) {
  for (int round = 0; round < 50; ++round) {
    auto sig = std::make_unique<signal<void()>>();
    std::vector<connection> connections;
    for (int i = 0; i < 50; ++i) connections.push_back(sig->connect([] {}));
    std::thread destroyer([&] { sig.reset(); });
    for (auto& c : connections) c.disconnect();
    destroyer.join();
    for (auto& c : connections) EXPECT_FALSE(c.connected());
  }
}

TEST(signal_threads, emissions_on_several_threads_run_every_slot_each_time) {
  constexpr int threads_count = 4, emits = 2000, slots = 10;
  signal<void()> sig;
  std::vector<std::atomic<int>> calls(slots);
  for (auto& c : calls) sig.connect([&c] { c.fetch_add(1, std::memory_order_relaxed); });
  auto emitter = [&] {
    for (int i = 0; i < emits; ++i) sig();
  };
  std::thread threads[threads_count];
  for (auto& t : threads) t = std::thread(emitter);
  for (auto& t : threads) t.join();
  for (auto& c : calls) EXPECT_EQ(c.load(), threads_count * emits);
}

}  // namespace
