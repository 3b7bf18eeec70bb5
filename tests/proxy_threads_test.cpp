// Tests for weakref::proxy across threads: calls through copies of a proxy on other threads race
// with the object's death; none sees a destroyed object and each ends on reference_error.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "support/proxy_helpers.hpp"
#include "weakref/errors.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/proxy.hpp"

namespace {
using proxy_helpers::kDeadMessage;
}  // namespace

TEST(proxy_threads, arrow_on_other_threads_races_with_death) {
  // Readers call through their own copies of the proxy until it throws; the owner drops the
  // object meanwhile. No call may see a destroyed object; each reader ends on reference_error.
  struct Target {
    std::atomic<int>* destructions;
    ~Target() { destructions->fetch_add(1); }
    int touch() const {  // 0 unless the object was destroyed during the call
      int seen = 0;
      for (int i = 0; i < 16; ++i) seen += destructions->load();
      return seen;
    }
  };
  constexpr int kRounds = 12;
  constexpr int kReaders = 2;
  constexpr long kMaxCalls = 5'000'000;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> destructions{0};
    std::atomic<int> calls{0};
    std::atomic<int> bad{0};
    std::atomic<int> dead_errors{0};
    auto owner = weakref::make_shared<Target>(Target{&destructions});
    destructions = 0;  // the temporary Target
    const weakref::proxy<Target> p(owner);
    std::vector<std::thread> readers;
    readers.reserve(kReaders);
    for (int i = 0; i < kReaders; ++i) {
      readers.emplace_back([p, &calls, &bad, &dead_errors] {
        for (long n = 0; n < kMaxCalls; ++n) {
          try {
            if (p->touch() != 0) bad.fetch_add(1);
            calls.fetch_add(1);
          } catch (const weakref::reference_error& e) {
            if (e.what() == kDeadMessage) dead_errors.fetch_add(1);
            return;
          }
        }
      });
    }
    while (calls.load() < 2 * kReaders) std::this_thread::yield();
    owner.reset();
    for (auto& t : readers) t.join();
    ASSERT_EQ(bad.load(), 0) << "round " << round;
    ASSERT_EQ(dead_errors.load(), kReaders) << "round " << round;
    ASSERT_EQ(destructions.load(), 1) << "round " << round;
    ASSERT_FALSE(p.alive());
  }
}
