// Threaded tests for weakref::ref (run under ThreadSanitizer in CI): objects dying on one
// thread while refs are copied, locked, created and dropped on others. Each test is bounded
// (well under 2 s under TSan on 2 cores); threads start together on a std::barrier or latch.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cstddef>
#include <latch>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "weakref/ref.hpp"

namespace {

// std::jthread without stop tokens (libc++ has no std::jthread before 18; Debian 12's is 14):
// a thread joined when destroyed.
class joining_thread {
 public:
  template <class F, class... A>
  explicit joining_thread(F&& f, A&&... args) : t_(std::forward<F>(f), std::forward<A>(args)...) {}
  joining_thread(joining_thread&&) noexcept = default;
  joining_thread& operator=(joining_thread&&) = delete;
  ~joining_thread() {
    if (t_.joinable()) t_.join();
  }

 private:
  std::thread t_;
};

using weakref::getweakrefcount;
using weakref::ref;

// An object that records its death: `alive` turns false and `died_on` gets the thread.
struct victim {
  explicit victim(std::thread::id* died_on = nullptr) : died_on_(died_on) {}
  victim(const victim&) = delete;
  victim& operator=(const victim&) = delete;
  ~victim() {
    alive.store(false);
    if (died_on_) *died_on_ = std::this_thread::get_id();
  }
  std::atomic<bool> alive{true};

 private:
  std::thread::id* died_on_;
};

// A std::barrier wakes its waiters one after another, and a thread woken late can find the
// round's work already done. Each round's threads call this after the barrier, so they
// really run at once; the main thread resets `gate` to 0 before the round.
void run_together(std::atomic<int>& gate, int threads) {
  gate.fetch_add(1);
  while (gate.load() < threads) std::this_thread::yield();
}

TEST(ref_threads, objects_dying_on_one_thread_while_others_copy_lock_and_create_refs) {
  constexpr int kRounds = 40, kObjects = 50, kWorkers = 2;
  std::vector<std::shared_ptr<victim>> objects;
  std::vector<ref<victim>> plain, with_callback;
  std::vector<std::atomic<int>> calls(kObjects);
  std::atomic<int> made{0}, ran{0}, bad{0}, gate{0};
  int wrong_calls = 0, alive_after_death = 0;
  std::barrier sync(kWorkers + 1);
  std::vector<joining_thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (int round = 0; round < kRounds; ++round) {
        sync.arrive_and_wait();  // the round's objects and refs are ready
        run_together(gate, kWorkers + 1);
        std::vector<ref<victim>> kept;  // refs made here; their callbacks must all run
        for (int pass = 0; pass < 2; ++pass) {
          for (int i = 0; i < kObjects; ++i) {
            const int k = w == 0 ? i : kObjects - 1 - i;
            ref<victim> copy = with_callback[k];
            ref<victim> plain_copy = plain[k];
            auto strong = copy.lock();
            if (!strong) continue;
            if (!strong->alive.load() || plain_copy.lock() != strong) ++bad;
            if (k % 5 == 0) {
              kept.emplace_back(strong, [&ran, &bad](const ref<victim>& dead) {
                ran.fetch_add(1);
                if (dead.alive()) ++bad;
              });
              made.fetch_add(1);
            }
            if (k % 7 == 0) {
              for (auto& r : weakref::getweakrefs(strong)) bad += r.lock() != strong;
            }
          }
        }
        sync.arrive_and_wait();  // every object is dead now
      }
    });
  }
  for (int round = 0; round < kRounds; ++round) {
    objects.clear();
    plain.clear();
    with_callback.clear();
    for (int i = 0; i < kObjects; ++i) {
      calls[i].store(0);
      objects.push_back(weakref::make_shared<victim>());
      plain.emplace_back(objects[i]);
      with_callback.emplace_back(objects[i], [&calls, i] { calls[i].fetch_add(1); });
    }
    gate.store(0);
    sync.arrive_and_wait();
    run_together(gate, kWorkers + 1);
    for (int i = 0; i < kObjects; ++i) {
      objects[i].reset();
      if (i % 8 == 0) std::this_thread::yield();
    }
    sync.arrive_and_wait();
    for (int i = 0; i < kObjects; ++i) {
      wrong_calls += calls[i].load() != 1;
      alive_after_death += with_callback[i].alive() || plain[i].alive();
    }
  }
  workers.clear();
  EXPECT_EQ(wrong_calls, 0);
  EXPECT_EQ(alive_after_death, 0);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(ran.load(), made.load());
}

TEST(ref_threads, dropping_the_last_handles_while_the_object_dies_runs_callbacks_at_most_once) {
  // Two threads each drop their own refs (with callbacks) while the main thread drops the
  // object: each callback runs once if its ref was still there when the object died, else
  // never; in no case twice, nor with a live ref.
  constexpr int kIterations = 400, kDroppers = 2, kRefs = 16;
  std::shared_ptr<victim> obj;
  std::vector<std::vector<ref<victim>>> handles(kDroppers);
  std::vector<std::atomic<int>> calls(kDroppers * kRefs);
  std::atomic<int> bad{0}, gate{0};
  int more_than_once = 0;
  std::barrier sync(kDroppers + 1);
  std::vector<joining_thread> droppers;
  for (int d = 0; d < kDroppers; ++d) {
    droppers.emplace_back([&, d] {
      for (int i = 0; i < kIterations; ++i) {
        sync.arrive_and_wait();
        run_together(gate, kDroppers + 1);
        handles[d].clear();
        sync.arrive_and_wait();
      }
    });
  }
  for (int i = 0; i < kIterations; ++i) {
    obj = weakref::make_shared<victim>();
    for (int k = 0; k < kDroppers * kRefs; ++k) {
      calls[k].store(0);
      handles[k / kRefs].emplace_back(obj, [&calls, &bad, k](const ref<victim>& dead) {
        calls[k].fetch_add(1);
        if (dead.alive() || dead.has_callback() || dead.lock()) ++bad;
      });
    }
    gate.store(0);
    sync.arrive_and_wait();
    run_together(gate, kDroppers + 1);
    obj.reset();
    sync.arrive_and_wait();
    for (auto& c : calls) more_than_once += c.load() > 1;
  }
  droppers.clear();
  EXPECT_EQ(more_than_once, 0);
  EXPECT_EQ(bad.load(), 0);
}

TEST(ref_threads, lock_never_returns_a_dead_object_and_callbacks_run_on_the_dying_thread) {
  constexpr int kRounds = 300, kMaxLocks = 1000, kDropOwnerAfter = 20;
  std::thread::id died_on, called_on;
  std::shared_ptr<victim> obj;
  std::optional<ref<victim>> r;
  std::atomic<int> calls{0}, dead_locks{0}, ready{0}, other_locks{0};
  int wrong_calls = 0, wrong_thread = 0;
  std::barrier sync(3);
  // Both workers lock in a loop; worker 0 owns the object and drops it, while it holds a
  // lock, once worker 1 is locking too: the last strong reference goes on either of them.
  auto worker = [&](bool owns) {
    for (int round = 0; round < kRounds; ++round) {
      sync.arrive_and_wait();
      auto owner = owns ? std::move(obj) : nullptr;
      run_together(ready, 2);
      for (int n = 0; n < kMaxLocks; ++n) {
        auto strong = r->lock();
        if (!strong) break;
        if (!strong->alive.load()) ++dead_locks;  // held, so it must still be alive
        if (!owns) other_locks.fetch_add(1);
        if (owner && other_locks.load() >= kDropOwnerAfter) owner.reset();
      }
      owner.reset();
      sync.arrive_and_wait();
    }
  };
  joining_thread first(worker, true), second(worker, false);
  for (int round = 0; round < kRounds; ++round) {
    calls.store(0);
    ready.store(0);
    other_locks.store(0);
    obj = weakref::make_shared<victim>(&died_on);
    r.emplace(obj, [&] {
      calls.fetch_add(1);
      called_on = std::this_thread::get_id();
    });
    sync.arrive_and_wait();
    sync.arrive_and_wait();  // the workers dropped every reference: the object is dead
    wrong_calls += calls.load() != 1 || r->alive();
    wrong_thread += called_on != died_on;
  }
  EXPECT_EQ(dead_locks.load(), 0);
  EXPECT_EQ(wrong_calls, 0);
  EXPECT_EQ(wrong_thread, 0);
}

TEST(ref_threads, objects_die_in_parallel_on_different_threads) {
  constexpr int kThreads = 4, kObjects = 400;
  // Object i is owned by threads i % kThreads and (i + 1) % kThreads: whichever drops last
  // runs the callback, on the thread that also runs the destructor.
  std::vector<std::thread::id> died_on(kObjects), called_on(kObjects);
  std::vector<std::atomic<int>> calls(kObjects);
  std::vector<std::vector<std::shared_ptr<victim>>> owned(kThreads);
  std::vector<ref<victim>> refs;
  for (int i = 0; i < kObjects; ++i) {
    auto obj = weakref::make_shared<victim>(&died_on[i]);
    refs.emplace_back(obj, [&, i] {
      calls[i].fetch_add(1);
      called_on[i] = std::this_thread::get_id();
    });
    owned[i % kThreads].push_back(obj);
    owned[(i + 1) % kThreads].push_back(std::move(obj));
  }
  std::atomic<int> dead_locks{0};
  std::latch start(kThreads);
  {
    std::vector<joining_thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        for (std::size_t i = 0; i < owned[t].size(); ++i) {
          owned[t][i].reset();
          if (auto other = refs[(i * 7 + static_cast<std::size_t>(t)) % kObjects].lock()) {
            dead_locks += !other->alive.load();
          }
        }
      });
    }
  }
  int wrong_calls = 0, wrong_thread = 0;
  for (int i = 0; i < kObjects; ++i) {
    wrong_calls += calls[i].load() != 1 || refs[i].alive();
    wrong_thread += called_on[i] != died_on[i];
  }
  EXPECT_EQ(wrong_calls, 0);
  EXPECT_EQ(wrong_thread, 0);
  EXPECT_EQ(dead_locks.load(), 0);
}

TEST(ref_threads, racing_canonical_ref_creation_shares_one_weak_reference_object) {
  constexpr int kRounds = 40, kThreads = 3, kChurn = 1000;
  std::shared_ptr<victim> obj;
  std::vector<ref<victim>> made(kThreads);
  std::atomic<int> wrong_counts{0}, gate{0};
  int unequal = 0, wrong_final = 0;
  std::barrier sync(kThreads + 1);
  std::vector<joining_thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        sync.arrive_and_wait();
        run_together(gate, kThreads);
        const auto strong = obj;  // a copy of the round's object (main resets it later)
        // Create and drop while the others do the same: the canonical ref keeps dying and
        // being re-created, and two threads must never each create one.
        for (int n = 0; n < kChurn; ++n) {
          ref<victim> r(strong);
          wrong_counts += getweakrefcount(strong) != 1;
        }
        made[t] = ref<victim>(strong);
        wrong_counts += getweakrefcount(strong) != 1;
        sync.arrive_and_wait();
      }
    });
  }
  for (int round = 0; round < kRounds; ++round) {
    obj = weakref::make_shared<victim>();
    gate.store(0);
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    for (auto& r : made) unequal += !(r == made[0]) || r.lock() != obj;
    wrong_final += getweakrefcount(obj) != 1;
    for (auto& r : made) r = {};
    wrong_final += getweakrefcount(obj) != 0;
    obj.reset();
  }
  threads.clear();
  EXPECT_EQ(wrong_counts.load(), 0);
  EXPECT_EQ(unequal, 0);
  EXPECT_EQ(wrong_final, 0);
}

}  // namespace
