// Tests for weakref::finalize: runs func(args...) exactly once (at death, when called, or at
// exit), detach, alive, atexit, handle semantics, CPython's order, exceptions, threads.
// The exit-time behaviour runs in death tests (threadsafe style, so they work under TSan).
#include "weakref/finalize.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "weakref/errors.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/proxy.hpp"
#include "weakref/ref.hpp"
#include "weakref/unraisable.hpp"

namespace {

using strings = std::vector<std::string>;

// Installs a hook that records "<where>: <what()>"; restores the previous hook when destroyed.
class unraisable_log {
 public:
  unraisable_log()
      : previous_(weakref::set_unraisable_hook([this](const weakref::unraisable& u) {
          try {
            std::rethrow_exception(u.error);
          } catch (const std::exception& e) {
            entries.push_back(std::string(u.where) + ": " + e.what());
          }
        })) {}
  unraisable_log(const unraisable_log&) = delete;
  unraisable_log& operator=(const unraisable_log&) = delete;
  ~unraisable_log() { weakref::set_unraisable_hook(std::move(previous_)); }

  strings entries;

 private:
  weakref::unraisable_hook previous_;
};

struct copy_counter {
  copy_counter(int* copies, int* moves) : copies(copies), moves(moves) {}
  copy_counter(const copy_counter& other) : copies(other.copies), moves(other.moves) { ++*copies; }
  copy_counter(copy_counter&& other) noexcept : copies(other.copies), moves(other.moves) {
    ++*moves;
  }
  copy_counter& operator=(const copy_counter&) = delete;
  int* copies;
  int* moves;
};

// An object that records its destruction in `log`.
struct tracked {
  explicit tracked(strings* log) : log(log) {}
  tracked(const tracked&) = delete;
  tracked& operator=(const tracked&) = delete;
  ~tracked() { log->push_back("destructor"); }
  strings* log;
};

void say(const char* what) { std::fprintf(stderr, "%s\n", what); }

thread_local bool on_caller_thread = false;

}  // namespace

TEST(finalize, runs_once_at_death_with_its_arguments_before_the_destructor) {
  strings log;
  auto obj = weakref::make_shared<tracked>(&log);
  weakref::finalize f(
      obj, [&log](const std::string& s, int n) { log.push_back(s + std::to_string(n)); },
      std::string("x"), 7);
  EXPECT_TRUE(f.alive());
  EXPECT_TRUE(log.empty());
  obj.reset();
  EXPECT_EQ(log, (strings{"x7", "destructor"}));
  EXPECT_FALSE(f.alive());
  EXPECT_FALSE(f());
  EXPECT_FALSE(f.detach());
  EXPECT_EQ(log.size(), 2u);
}

TEST(finalize, call_runs_it_now_then_never_again) {  // CPython test_finalize, part 1
  auto a = weakref::make_shared<int>(0);
  std::vector<int> res;
  auto add = [&res](int x, int y, int z) { res.push_back(x + y + z); };
  weakref::finalize f(a, add, 67, 43, 89);
  EXPECT_TRUE(f.alive());
  EXPECT_TRUE(f());
  EXPECT_FALSE(f());
  EXPECT_FALSE(f());
  EXPECT_FALSE(f.detach());
  EXPECT_FALSE(f.alive());
  EXPECT_EQ(res, std::vector<int>{199});
  a.reset();
  EXPECT_EQ(res, std::vector<int>{199});
}

TEST(finalize, detach_cancels_it) {  // CPython test_finalize, part 2
  auto a = weakref::make_shared<int>(0);
  std::vector<int> res;
  weakref::finalize f(
      a, [&res](int x, int y, int z) { res.push_back(x + y + z); }, 67, 43, 89);
  EXPECT_TRUE(f.detach());
  EXPECT_FALSE(f());
  EXPECT_FALSE(f());
  EXPECT_FALSE(f.detach());
  EXPECT_FALSE(f.alive());
  a.reset();
  EXPECT_TRUE(res.empty());
}

// CPython: detach() needs the object alive; from an earlier callback of the dying object it
// returns None and the finalizer still runs (found by tools/difftest).
TEST(finalize, detach_while_its_object_is_dying_is_too_late) {
  auto a = weakref::make_shared<int>(0);
  strings log;
  weakref::finalize f(a, [&log] { log.push_back("finalizer"); });
  bool detached = true, alive_in_callback = false;
  weakref::ref<int> r(a, [&] {  // newer, so it runs first
    alive_in_callback = f.alive();
    detached = f.detach();
    log.push_back("callback");
  });
  a.reset();
  EXPECT_TRUE(alive_in_callback);
  EXPECT_FALSE(detached);
  EXPECT_EQ(log, (strings{"callback", "finalizer"}));
  EXPECT_FALSE(f.alive());
}

TEST(finalize, arguments_and_function_are_stored_by_value) {
  int copies = 0;
  int moves = 0;
  auto obj = weakref::make_shared<int>(0);
  int seen = 0;
  copy_counter lvalue(&copies, &moves);
  weakref::finalize by_copy(
      obj, [&seen](const copy_counter&) { ++seen; }, lvalue);
  EXPECT_EQ(copies, 1);  // one copy into the finalizer, none when called
  EXPECT_EQ(moves, 0);
  weakref::finalize by_move(
      obj, [&seen](copy_counter&) { ++seen; }, copy_counter(&copies, &moves));
  EXPECT_EQ(copies, 1);
  EXPECT_EQ(moves, 1);

  std::string text = "before";
  std::string got;
  weakref::finalize with_string(
      obj, [&got](const std::string& s) { got = s; }, text);
  text = "after";

  struct adder {
    int* total;
    int amount;
    void operator()() const { *total += amount; }
  };
  int total = 0;
  adder add{&total, 1};
  weakref::finalize with_functor(obj, add);
  add.amount = 100;

  weakref::finalize move_only(
      obj, [&seen](std::unique_ptr<int>& p) { seen += *p; }, std::make_unique<int>(40));
  obj.reset();
  EXPECT_EQ(got, "before");
  EXPECT_EQ(total, 1);
  EXPECT_EQ(seen, 42);
  EXPECT_EQ(copies, 1);
  EXPECT_EQ(moves, 1);
}

TEST(finalize, function_and_arguments_are_released_once_it_is_over) {
  // CPython test_all_freed: kept while pending (even without handles), freed once over.
  for (const std::string how : {"death", "call", "detach"}) {
    auto obj = weakref::make_shared<int>(0);
    auto token = std::make_shared<int>(1);
    const std::weak_ptr<int> watch = token;
    weakref::finalize f(
        obj, [token](const std::shared_ptr<int>&) {}, token);
    token.reset();
    EXPECT_FALSE(watch.expired()) << how;
    if (how == "death") {
      f = weakref::finalize();  // no handle left: the registry keeps it
      EXPECT_FALSE(watch.expired());
      obj.reset();
    } else if (how == "call") {
      EXPECT_TRUE(f());
    } else {
      EXPECT_TRUE(f.detach());
    }
    EXPECT_TRUE(watch.expired()) << how;
  }
}

TEST(finalize, atexit_defaults_to_true_is_settable_and_false_once_dead) {
  auto obj = weakref::make_shared<int>(0);
  weakref::finalize f(obj, [] {});
  const weakref::finalize copy = f;
  EXPECT_TRUE(f.atexit());
  f.atexit(false);
  EXPECT_FALSE(f.atexit());
  EXPECT_FALSE(copy.atexit());  // one finalizer, two handles
  f.atexit(true);
  EXPECT_TRUE(copy.atexit());
  EXPECT_TRUE(f());
  EXPECT_FALSE(f.atexit());
  f.atexit(true);  // ignored once dead
  EXPECT_FALSE(f.atexit());

  weakref::finalize g(obj, [] {});
  obj.reset();
  EXPECT_FALSE(g.atexit());
  g.atexit(true);
  EXPECT_FALSE(g.atexit());
}

TEST(finalize, default_constructed_is_dead) {
  weakref::finalize f;
  EXPECT_FALSE(f.alive());
  EXPECT_FALSE(f.detach());
  EXPECT_FALSE(f());
  EXPECT_FALSE(f.atexit());
  f.atexit(true);
  EXPECT_FALSE(f.atexit());
}

TEST(finalize, dropping_every_handle_does_not_cancel_it) {
  auto obj = weakref::make_shared<int>(0);
  strings log;
  {
    weakref::finalize f(obj, [&log] { log.push_back("scoped"); });
  }
  static_cast<void>(weakref::finalize(obj, [&log] { log.push_back("temporary"); }));
  EXPECT_TRUE(log.empty());
  obj.reset();
  EXPECT_EQ(log, (strings{"temporary", "scoped"}));
}

TEST(finalize, copies_are_handles_to_one_finalizer) {
  auto obj = weakref::make_shared<int>(0);
  int runs = 0;
  weakref::finalize f(obj, [&runs] { ++runs; });
  weakref::finalize copy = f;
  weakref::finalize assigned;
  assigned = copy;
  EXPECT_EQ(weakref::getweakrefcount(obj), 1u);
  EXPECT_TRUE(copy());
  EXPECT_FALSE(f.alive());
  EXPECT_FALSE(assigned.alive());
  EXPECT_FALSE(f());
  EXPECT_FALSE(assigned.detach());
  obj.reset();
  EXPECT_EQ(runs, 1);

  auto other = weakref::make_shared<int>(0);  // identical arguments: independent finalizers
  weakref::finalize g1(other, [&runs] { ++runs; });
  weakref::finalize g2(other, [&runs] { ++runs; });
  EXPECT_EQ(weakref::getweakrefcount(other), 2u);
  EXPECT_TRUE(g1());
  EXPECT_TRUE(g2.alive());
  other.reset();
  EXPECT_EQ(runs, 3);
}

TEST(finalize, counts_in_getweakrefcount_until_it_is_over) {
  auto a = weakref::make_shared<int>(0);
  const weakref::ref<int> r(a);
  weakref::finalize f(a, [] {});
  weakref::finalize g(a, [] {});
  EXPECT_EQ(weakref::getweakrefcount(a), 3u);  // CPython: 3, detach -> 2, call -> 1
  EXPECT_TRUE(g.detach());
  EXPECT_EQ(weakref::getweakrefcount(a), 2u);
  EXPECT_TRUE(f());
  EXPECT_EQ(weakref::getweakrefcount(a), 1u);
}

TEST(finalize, order_matches_cpython_test_order) {
  auto a = weakref::make_shared<int>(0);
  strings res;
  auto append = [&res](const std::string& s) { res.push_back(s); };
  weakref::finalize f1(a, append, std::string("f1"));
  weakref::finalize f2(a, append, std::string("f2"));
  weakref::finalize f3(a, append, std::string("f3"));
  weakref::finalize f4(a, append, std::string("f4"));
  weakref::finalize f5(a, append, std::string("f5"));
  f1 = weakref::finalize();  // del f1, f4: finalizers keep themselves alive
  f4 = weakref::finalize();
  EXPECT_TRUE(f2.alive());
  EXPECT_TRUE(f3.alive());
  EXPECT_TRUE(f5.alive());
  EXPECT_TRUE(f5.detach());
  EXPECT_FALSE(f5.alive());
  f5();  // nothing because previously unregistered
  res.push_back("A");
  f3();  // => res.push_back("f3")
  EXPECT_FALSE(f3.alive());
  res.push_back("B");
  f3();  // nothing because previously called
  res.push_back("C");
  a.reset();  // => f4, f2, f1
  EXPECT_FALSE(f2.alive());
  res.push_back("D");
  f2();  // nothing because previously called at death
  EXPECT_EQ(res, (strings{"A", "f3", "B", "C", "f4", "f2", "f1", "D"}));
}

TEST(finalize, interleaves_newest_first_with_ref_and_proxy_callbacks) {
  strings res;
  auto a = weakref::make_shared<tracked>(&res);
  auto append = [&res](const char* s) { res.push_back(s); };
  weakref::finalize f1(a, append, "f1");
  const weakref::ref<tracked> r(a, [&res] { res.push_back("ref-cb"); });
  weakref::finalize f2(a, append, "f2");
  const weakref::proxy<tracked> p(a, [&res] { res.push_back("proxy-cb"); });
  a.reset();
  // CPython: ['proxy-cb', 'f2', 'ref-cb', 'f1']; the destructor runs after every callback.
  EXPECT_EQ(res, (strings{"proxy-cb", "f2", "ref-cb", "f1", "destructor"}));
}

TEST(finalize, exception_at_death_goes_to_the_unraisable_hook) {
  unraisable_log hook;
  strings log;
  auto obj = weakref::make_shared<tracked>(&log);
  auto append = [&log](const char* s) { log.push_back(s); };
  weakref::finalize f1(obj, append, "f1");
  weakref::finalize f2(obj, [] { throw std::runtime_error("boom"); });
  weakref::finalize f3(obj, append, "f3");
  EXPECT_NO_THROW(obj.reset());
  EXPECT_EQ(hook.entries, (strings{"finalize: boom"}));
  EXPECT_EQ(log, (strings{"f3", "f1", "destructor"}));  // the others still ran
  EXPECT_FALSE(f2.alive());
}

TEST(finalize, exception_when_called_propagates_and_it_is_over) {
  unraisable_log hook;
  auto obj = weakref::make_shared<int>(0);
  int runs = 0;
  weakref::finalize f(obj, [&runs] {
    ++runs;
    throw std::runtime_error("boom");
  });
  EXPECT_THROW(f(), std::runtime_error);
  EXPECT_FALSE(f.alive());  // CPython: marked dead before func runs
  EXPECT_FALSE(f());
  obj.reset();
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(hook.entries.empty());
}

TEST(finalize, rejects_pointers_not_made_by_weakref_make_shared) {
  int runs = 0;
  auto count = [&runs] { ++runs; };
  const auto message = [](auto make) -> std::string {
    try {
      make();
    } catch (const weakref::type_error& e) {
      return e.what();
    }
    return "no exception";
  };
  auto plain = std::make_shared<int>(0);
  const std::string not_made = message([&] { weakref::finalize f(plain, count); });
  EXPECT_NE(not_made.find("was not created by weakref::make_shared"), std::string::npos)
      << not_made;
  EXPECT_NE(not_made.find("finalize"), std::string::npos) << not_made;
  const std::string empty = message([&] { weakref::finalize f(std::shared_ptr<int>(), count); });
  EXPECT_NE(empty.find("is empty"), std::string::npos) << empty;
  plain.reset();
  EXPECT_EQ(runs, 0);
}

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

// Exit-time behaviour (CPython's finalize._exitfunc). Each child registers its own handlers.
TEST(finalize_at_exit_DeathTest, pending_finalizers_run_newest_first_then_none_any_more) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static auto* keep = new std::vector<std::shared_ptr<int>>;
        static auto* skipped = new weakref::finalize;
        // Registered before the first finalize, so it runs after the finalizers' exit run.
        std::atexit(+[] {
          say((*skipped)() ? "late call ran" : "late call did nothing");
          keep->clear();  // the objects die now: too late, nothing runs
          say("late");
        });
        for (int i = 0; i < 4; ++i) keep->push_back(weakref::make_shared<int>(i));
        weakref::finalize f1((*keep)[0], say, "f1");
        weakref::finalize f2((*keep)[1], say, "f2");
        f2.atexit(false);  // skipped at exit
        *skipped = weakref::finalize((*keep)[1], say, "f2b");
        skipped->atexit(false);
        static_cast<void>(weakref::finalize((*keep)[2], say, "f3"));  // no handle kept
        weakref::finalize f4((*keep)[3], say, "f4");
        weakref::finalize f5((*keep)[3], say, "f5");
        f5();  // already run: not again at exit
        weakref::finalize f6((*keep)[3], say, "f6");
        f6.detach();
        auto dies = weakref::make_shared<int>(9);
        weakref::finalize f7(dies, say, "f7");
        dies.reset();  // ran at death: not again at exit
        say("exit");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "^f5\nf7\nexit\nf4\nf3\nf1\nlate call did nothing\nlate\n$");
}

TEST(finalize_at_exit_DeathTest, cpython_test_atexit_rescans_and_reports_exceptions) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static auto* cls = new std::shared_ptr<int>(weakref::make_shared<int>(0));
        weakref::finalize f1(*cls, say, "f1");
        weakref::finalize f2(*cls, say, "f2");
        weakref::finalize f3(*cls, [] {
          // A finalizer created by a finalizer at exit runs next.
          static_cast<void>(weakref::finalize(*cls, say, "g1"));
          say("f3 error");
          throw std::runtime_error("division by zero");
        });
        weakref::finalize f4(*cls, say, "f4");
        f2.atexit(false);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0),
      "^f4\nf3 error\nweakref: exception ignored in finalize at exit: division by zero\ng1\nf1\n$");
}

TEST(finalize_at_exit_DeathTest, exception_at_exit_goes_to_the_installed_hook) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        weakref::set_unraisable_hook([](const weakref::unraisable& u) {
          try {
            std::rethrow_exception(u.error);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "hook [%s] %s\n", std::string(u.where).c_str(), e.what());
          }
        });
        static auto* obj = new std::shared_ptr<int>(weakref::make_shared<int>(0));
        weakref::finalize f1(*obj, say, "f1");
        weakref::finalize f2(*obj, [] { throw std::logic_error("bad"); });
        weakref::finalize f3(*obj, say, "f3");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "^f3\nhook \\[finalize at exit\\] bad\nf1\n$");
}
