// Tests for weakref::finalize across threads: a call racing with the object's death on another
// thread runs func exactly once, and f() returns true exactly when it ran func; creations on two
// threads (each pushing onto the registry and sweeping it) while a third detaches, or runs the
// exit path; a ref from getweakrefs dropped on another thread while the object dies.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "weakref/finalize.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"

namespace {

thread_local bool on_caller_thread = false;

}  // namespace

TEST(finalize_threads, call_racing_with_death_runs_it_exactly_once) {
  // Each round, the caller thread calls the finalizer while the main thread drops the object,
  // both released at once by `go`, with varying delays so that either side wins in some rounds.
  constexpr int kRounds = 1000;
  std::atomic<int> published{0};  // the round whose handle the caller may copy
  std::atomic<int> armed{0};      // the caller holds its copy and waits for `go`
  std::atomic<int> go{0};
  std::atomic<int> done{0};
  std::atomic<int> runs{0};
  weakref::finalize shared_handle;  // written by the main thread before `published`
  const auto spin = [](int n) {
    std::atomic<int> sink{0};
    for (int i = 0; i < n; ++i) sink.fetch_add(1, std::memory_order_relaxed);
  };
  const auto wait_for = [](const std::atomic<int>& flag, int round, int spin_limit = 1000) {
    for (int spins = 0; flag.load() != round; ++spins) {
      if (spins > spin_limit) std::this_thread::yield();
    }
  };
  std::atomic<int> ran_by_call{0};  // the last round whose func ran on the caller thread
  std::atomic<int> mismatches{0};   // f() returned true iff func ran in that call
  std::thread caller([&] {
    on_caller_thread = true;
    for (int round = 1; round <= kRounds; ++round) {
      wait_for(published, round);
      weakref::finalize mine = shared_handle;  // a copy used on this thread
      armed.store(round);
      wait_for(go, round, 50'000);  // mostly spin: react at once
      spin(round % 3 * 32);
      const bool ran = mine();
      if (ran != (ran_by_call.load() == round)) mismatches.fetch_add(1);
      done.store(round);
    }
  });
  int bad_rounds = 0;
  for (int round = 1; round <= kRounds; ++round) {
    auto obj = weakref::make_shared<int>(round);
    shared_handle = weakref::finalize(
        obj,
        [&runs, &ran_by_call](int r) {
          runs.fetch_add(1);
          if (on_caller_thread) ran_by_call.store(r);
        },
        round);
    const int before = runs.load();
    published.store(round);
    wait_for(armed, round);
    go.store(round);
    spin(round % 16 * 64);
    obj.reset();  // races with the caller's f()
    wait_for(done, round);
    if (runs.load() != before + 1 || shared_handle.alive()) ++bad_rounds;
  }
  caller.join();
  EXPECT_EQ(bad_rounds, 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(runs.load(), kRounds);
}

namespace {

// Runs `body` while another thread calls the exit run directly, over and over, then makes one
// last exit run (for the finalizers made after the other thread's last one). Returns how many
// exit runs the other thread made. For a child process: after an exit run no finalizer runs.
template <class Body>
int with_exit_runs_alongside(Body body) {
  auto& registry = weakref::detail::finalizer_registry::instance();
  std::atomic<bool> stop{false};
  std::atomic<int> exit_runs{0};
  std::thread exit_runner([&] {
    while (!stop.load()) {
      registry.run_at_exit();
      exit_runs.fetch_add(1);
    }
  });
  body();
  stop.store(true);
  exit_runner.join();
  registry.run_at_exit();
  return exit_runs.load();
}

// The exit run (here called directly, on another thread, over and over) may claim a finalizer
// the moment it is registered, and release its node. The constructor links the node before
// registering it, so it never links a node already freed (AddressSanitizer: heap-use-after-
// free in the constructor, when it registered first). The window is a few instructions wide:
// this stress test makes it likely, not certain, to be hit when the order is wrong. It runs
// in a child process ("threadsafe" death test style), because after an exit run no finalizer
// runs any more.
TEST(finalize_threads, an_exit_run_on_another_thread_while_finalizers_are_created) {
  const std::string style = GTEST_FLAG_GET(death_test_style);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        auto obj = weakref::make_shared<int>(0);
        int exit_runs = with_exit_runs_alongside([&] {
          const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000);
          int created = 0;
          while (std::chrono::steady_clock::now() < until || created < 2000) {
            weakref::finalize f(obj, [] {});
            ++created;
          }
        });
        // Every finalizer is over (the exit runs claimed them); none is linked any more.
        std::exit(exit_runs > 0 && weakref::getweakrefcount(obj) == 0 ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
  GTEST_FLAG_SET(death_test_style, style);
}

// Two threads create finalizers (so both push onto the registry and, every few creations, sweep
// it) and end them in four ways: a handle handed to a third thread, which detaches it while the
// creator drops the object (the two race); a call; the object's death with no handle left; the
// object's death at the end. Every function runs exactly once unless a detach won instead.
TEST(finalize_threads, creations_on_two_threads_while_a_third_detaches) {
  constexpr int kPerThread = 20000;
  std::atomic<int> runs{0};
  std::atomic<int> detached{0};
  std::mutex inbox_lock;
  std::deque<weakref::finalize> inbox;  // handles for the detaching thread
  std::atomic<int> creators_left{2};
  std::thread detacher([&] {
    for (;;) {
      weakref::finalize f;
      {
        const std::lock_guard lock(inbox_lock);
        if (!inbox.empty()) {
          f = std::move(inbox.front());
          inbox.pop_front();
        }
      }
      if (f == weakref::finalize()) {
        if (creators_left.load() == 0) {
          const std::lock_guard lock(inbox_lock);
          if (inbox.empty()) return;
          continue;
        }
        std::this_thread::yield();
        continue;
      }
      if (f.detach()) detached.fetch_add(1);  // false: run, or its object is dying
    }
  });
  const auto create = [&] {
    std::vector<std::shared_ptr<int>> late;
    std::vector<weakref::finalize> late_handles;
    for (int i = 0; i < kPerThread; ++i) {
      auto obj = weakref::make_shared<int>(i);
      weakref::finalize f(obj, [&runs] { runs.fetch_add(1); });
      switch (i % 4) {
        case 0: {
          const std::lock_guard lock(inbox_lock);
          inbox.push_back(f);
          break;
        }
        case 1:
          f();
          break;
        case 2:
          break;
        default:
          late.push_back(obj);
          late_handles.push_back(f);
          break;
      }
      f = weakref::finalize();
      obj.reset();
    }
    for (auto& f : late_handles) {
      if (!f.alive()) runs.fetch_add(1000000);  // never: its object lives
    }
    late.clear();
    for (auto& f : late_handles) {
      if (f.alive()) runs.fetch_add(1000000);  // never: it ran at the death
    }
    creators_left.fetch_sub(1);
  };
  std::thread first(create);
  std::thread second(create);
  first.join();
  second.join();
  detacher.join();
  EXPECT_EQ(runs.load() + detached.load(), 2 * kPerThread);
}

// As above with the exit run (called directly, over and over) on the third thread, in a child
// process (after an exit run no finalizer runs any more): it may claim any finalizer the
// moment it is registered; each function runs at most once, and after a last exit run every
// finalizer is over.
TEST(finalize_threads, creations_on_two_threads_while_a_third_runs_the_exit_path) {
  const std::string style = GTEST_FLAG_GET(death_test_style);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        constexpr int kPerThread = 20000;
        auto runs = std::make_unique<std::atomic<int>[]>(2 * kPerThread);
        std::vector<std::shared_ptr<int>> kept[2];
        const auto create = [&](int t) {
          for (int i = 0; i < kPerThread; ++i) {
            auto obj = weakref::make_shared<int>(i);
            auto& count = runs[static_cast<std::size_t>(t * kPerThread + i)];
            weakref::finalize f(obj, [&count] { count.fetch_add(1); });
            if (i % 2 == 0) kept[t].push_back(obj);  // alive until the end
            if (i % 3 == 0) f.detach();
          }
        };
        int exit_runs = with_exit_runs_alongside([&] {
          std::thread first(create, 0);
          std::thread second(create, 1);
          first.join();
          second.join();
        });
        bool ok = exit_runs > 0;
        for (int i = 0; i < 2 * kPerThread; ++i) ok &= runs[static_cast<std::size_t>(i)] <= 1;
        for (auto& objects : kept) {
          for (auto& obj : objects) ok &= weakref::getweakrefcount(obj) == 0;  // all over
        }
        std::exit(ok ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
  GTEST_FLAG_SET(death_test_style, style);
}

// The death deletes a finalizer's node outright when its handles are the finalizer's and its
// own; a ref to the node (from getweakrefs) dropped on another thread at the same time must
// either be seen (and the node released twice) or have gone first. Each round races the two.
TEST(finalize_threads, a_ref_to_the_node_dropped_while_the_object_dies) {
  constexpr int kRounds = 2000;
  std::atomic<int> runs{0};
  std::atomic<int> published{0};
  std::atomic<int> dropped{0};
  std::vector<weakref::ref<int>> handoff;  // written before `published`, read after
  std::thread dropper([&] {
    for (int round = 1; round <= kRounds; ++round) {
      while (published.load() != round) std::this_thread::yield();
      handoff.clear();
      dropped.store(round);
    }
  });
  for (int round = 1; round <= kRounds; ++round) {
    auto obj = weakref::make_shared<int>(round);
    static_cast<void>(weakref::finalize(obj, [&runs] { runs.fetch_add(1); }));
    handoff = weakref::getweakrefs(obj);
    published.store(round);
    obj.reset();  // races with the dropper's handoff.clear()
    while (dropped.load() != round) std::this_thread::yield();
  }
  dropper.join();
  EXPECT_EQ(runs.load(), kRounds);
}

}  // namespace
