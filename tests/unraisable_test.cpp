// Tests for weakref/unraisable.hpp: where exceptions thrown on a death path go.
#include "weakref/unraisable.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "weakref/finalize.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/proxy.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_method.hpp"

namespace {

// Restores the default hook when the test ends, whatever happens.
struct default_hook_guard {
  default_hook_guard() = default;
  default_hook_guard(const default_hook_guard&) = delete;
  ~default_hook_guard() { weakref::set_unraisable_hook({}); }
};

// What a recording hook saw.
struct report {
  std::string where;
  std::string what;
  std::thread::id thread;
};

std::string what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "?";
  }
}

weakref::unraisable_hook recorder(std::vector<report>& reports) {
  return [&reports](const weakref::unraisable& u) {
    reports.push_back({std::string(u.where), what_of(u.error), std::this_thread::get_id()});
  };
}

struct widget {
  int get() const { return 1; }
};

// Makes an object whose only callback throws std::runtime_error(message), then drops it.
void die_with_throwing_callback(const char* message) {
  auto obj = weakref::make_shared<widget>();
  weakref::ref<widget> r(obj, [message] { throw std::runtime_error(message); });
  obj.reset();
}

TEST(unraisable, set_returns_the_previous_hook_and_empty_for_the_default) {
  default_hook_guard guard;
  int a_calls = 0;
  int b_calls = 0;
  auto previous = weakref::set_unraisable_hook([&](const weakref::unraisable&) { ++a_calls; });
  EXPECT_FALSE(previous);  // the default
  previous = weakref::set_unraisable_hook([&](const weakref::unraisable&) { ++b_calls; });
  ASSERT_TRUE(previous);
  previous({std::make_exception_ptr(1), "test"});
  EXPECT_EQ(a_calls, 1);  // it was hook a
  previous = weakref::set_unraisable_hook({});
  ASSERT_TRUE(previous);
  previous({std::make_exception_ptr(1), "test"});
  EXPECT_EQ(b_calls, 1);  // it was hook b
  EXPECT_FALSE(weakref::set_unraisable_hook({}));
}

TEST(unraisable, default_hook_prints_exactly_one_line) {
  default_hook_guard guard;
  testing::internal::CaptureStderr();
  die_with_throwing_callback("boom");
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "weakref: exception ignored in weakref callback: boom\n");
}

TEST(unraisable, an_empty_hook_restores_the_default) {
  default_hook_guard guard;
  std::vector<report> reports;
  weakref::set_unraisable_hook(recorder(reports));
  weakref::set_unraisable_hook({});
  testing::internal::CaptureStderr();
  die_with_throwing_callback("boom");
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "weakref: exception ignored in weakref callback: boom\n");
  EXPECT_TRUE(reports.empty());
}

TEST(unraisable, default_hook_prints_unknown_exception_for_non_std_exceptions) {
  default_hook_guard guard;
  testing::internal::CaptureStderr();
  {
    auto obj = weakref::make_shared<widget>();
    weakref::ref<widget> r(obj, [] { throw 42; });
    obj.reset();
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "weakref: exception ignored in weakref callback: unknown exception\n");
}

TEST(unraisable, a_throwing_hook_does_not_escape_and_both_exceptions_are_printed) {
  default_hook_guard guard;
  weakref::set_unraisable_hook(
      [](const weakref::unraisable&) { throw std::runtime_error("hook failed"); });
  testing::internal::CaptureStderr();
  EXPECT_NO_THROW(die_with_throwing_callback("boom"));
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "weakref: exception ignored in the unraisable hook: hook failed\n"
            "weakref: exception ignored in weakref callback: boom\n");
}

TEST(unraisable, hook_receives_the_exception_and_where_it_came_from) {
  default_hook_guard guard;
  std::vector<report> reports;
  weakref::set_unraisable_hook(recorder(reports));
  auto obj = weakref::make_shared<widget>();
  // Registered oldest to newest; they run newest first.
  weakref::ref<widget> r(obj, [] { throw std::runtime_error("from ref"); });
  weakref::proxy<widget> p(obj, [] { throw std::runtime_error("from proxy"); });
  weakref::weak_method m(obj, &widget::get, [] { throw std::runtime_error("from method"); });
  weakref::finalize f(obj, [] { throw std::runtime_error("from finalize"); });
  obj.reset();
  ASSERT_EQ(reports.size(), 4u);
  EXPECT_EQ(reports[0].where, "finalize");
  EXPECT_EQ(reports[0].what, "from finalize");
  EXPECT_EQ(reports[1].where, "weak_method callback");
  EXPECT_EQ(reports[1].what, "from method");
  EXPECT_EQ(reports[2].where, "proxy callback");
  EXPECT_EQ(reports[2].what, "from proxy");
  EXPECT_EQ(reports[3].where, "weakref callback");
  EXPECT_EQ(reports[3].what, "from ref");
}

TEST(unraisable, exceptions_never_escape_reset_and_later_callbacks_still_run) {
  default_hook_guard guard;
  std::vector<report> reports;
  weakref::set_unraisable_hook(recorder(reports));
  std::vector<std::string> events;
  struct noisy {
    std::vector<std::string>* events;
    ~noisy() { events->push_back("destructor"); }
  };
  auto obj = weakref::make_shared<noisy>(noisy{&events});
  weakref::ref<noisy> first(obj, [&] { events.push_back("first"); });
  weakref::ref<noisy> second(obj, [&] {
    events.push_back("second");
    throw std::runtime_error("second failed");
  });
  weakref::ref<noisy> third(obj, [&] { events.push_back("third"); });
  events.clear();  // the temporary noisy's destructor
  EXPECT_NO_THROW(obj.reset());
  EXPECT_EQ(events, (std::vector<std::string>{"third", "second", "first", "destructor"}));
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].what, "second failed");
  EXPECT_FALSE(first.alive());
}

TEST(unraisable, a_hook_may_replace_itself_while_it_runs) {
  default_hook_guard guard;
  std::vector<report> reports;
  auto record = recorder(reports);
  weakref::set_unraisable_hook([&reports, record](const weakref::unraisable& u) {
    weakref::set_unraisable_hook({});  // no deadlock, and this lambda stays alive until it returns
    record(u);
    EXPECT_EQ(reports.size(), 1u);
  });
  die_with_throwing_callback("first");
  testing::internal::CaptureStderr();
  die_with_throwing_callback("second");
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "weakref: exception ignored in weakref callback: second\n");
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].what, "first");
}

// A hook whose every copy, when destroyed, makes an object die with a throwing callback.
struct reports_when_destroyed {
  reports_when_destroyed() = default;
  reports_when_destroyed(const reports_when_destroyed&) = default;
  reports_when_destroyed(reports_when_destroyed&& other) noexcept
      : armed(std::exchange(other.armed, false)) {}
  reports_when_destroyed& operator=(const reports_when_destroyed&) = delete;
  ~reports_when_destroyed() {
    if (armed) die_with_throwing_callback("hook destroyed");
  }
  void operator()(const weakref::unraisable&) const {}
  bool armed = true;
};

// set_unraisable_hook destroys the hook it replaces after releasing the slot's lock: that
// destructor's report takes the lock (it deadlocked when the hook was destroyed under it).
TEST(unraisable, replacing_a_hook_whose_destruction_reports_does_not_deadlock) {
  default_hook_guard guard;
  std::vector<report> reports;
  weakref::set_unraisable_hook(reports_when_destroyed());
  auto replaced = std::async(std::launch::async, [&] {
    weakref::set_unraisable_hook(recorder(reports));  // the returned copy goes at once too
  });
  if (replaced.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    ADD_FAILURE() << "set_unraisable_hook deadlocked destroying the previous hook";
    std::fflush(stdout);
    std::_Exit(1);  // the stuck thread cannot be joined
  }
  replaced.get();
  ASSERT_EQ(reports.size(), 2u);  // the slot's copy, then the one set_unraisable_hook returned
  EXPECT_EQ(reports[0].what, "hook destroyed");
  EXPECT_EQ(reports[1].what, "hook destroyed");
}

TEST(unraisable, explicit_finalize_call_propagates_instead_of_reporting) {
  default_hook_guard guard;
  std::vector<report> reports;
  weakref::set_unraisable_hook(recorder(reports));
  auto obj = weakref::make_shared<widget>();
  weakref::finalize f(obj, [] { throw std::runtime_error("direct"); });
  EXPECT_THROW(f(), std::runtime_error);
  EXPECT_FALSE(f.alive());
  obj.reset();
  EXPECT_TRUE(reports.empty());
}

TEST(unraisable, hook_runs_on_the_thread_that_dropped_the_last_reference) {
  default_hook_guard guard;
  std::vector<report> reports;
  weakref::set_unraisable_hook(recorder(reports));
  auto obj = weakref::make_shared<widget>();
  weakref::ref<widget> r(obj, [] { throw std::runtime_error("elsewhere"); });
  std::thread::id dropper;
  std::thread t([&dropper, owned = std::move(obj)]() mutable {
    dropper = std::this_thread::get_id();
    owned.reset();
  });
  t.join();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].what, "elsewhere");
  EXPECT_EQ(reports[0].thread, dropper);
  EXPECT_NE(reports[0].thread, std::this_thread::get_id());
}

// Keeps the object of the finalizer below alive (and reachable, for LeakSanitizer) until exit.
std::shared_ptr<widget>* g_kept_until_exit = nullptr;

TEST(unraisable, finalize_at_exit_reports_where_finalize_at_exit) {
  // "threadsafe": the child re-executes this test alone instead of forking a process that may
  // have other threads (sanitizer runtimes start some).
  const std::string style = GTEST_FLAG_GET(death_test_style);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        g_kept_until_exit = new std::shared_ptr<widget>(weakref::make_shared<widget>());
        weakref::finalize f(*g_kept_until_exit, [] { throw std::runtime_error("late"); });
        std::exit(0);
      },
      testing::ExitedWithCode(0), "weakref: exception ignored in finalize at exit: late");
  GTEST_FLAG_SET(death_test_style, style);
}

}  // namespace
