// Tests for weakref::ref callbacks: once, newest first, before the destructor, nested deaths,
// cancellation by dropping every copy, CPython's snapshot rule, and exceptions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/tracked.hpp"
#include "weakref/finalize.hpp"
#include "weakref/proxy.hpp"
#include "weakref/ref.hpp"
#include "weakref/unraisable.hpp"
#include "weakref/weak_method.hpp"

namespace {

using testing::ElementsAre;
using weakref::ref;

struct widget : tracked {
  using tracked::tracked;
  int size() const { return 3; }
};

// Installs a hook that logs "unraisable <where>: <what()>" and restores the previous one.
class capture_unraisable {
 public:
  explicit capture_unraisable(event_log& log)
      : previous_(weakref::set_unraisable_hook([&log](const weakref::unraisable& u) {
          std::string what = "?";
          try {
            std::rethrow_exception(u.error);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (int code) {
            what = "int " + std::to_string(code);
          }
          log.add("unraisable " + std::string(u.where) + ": " + what);
        })) {}
  capture_unraisable(const capture_unraisable&) = delete;
  capture_unraisable& operator=(const capture_unraisable&) = delete;
  ~capture_unraisable() { weakref::set_unraisable_hook(std::move(previous_)); }

 private:
  weakref::unraisable_hook previous_;
};

TEST(ref_callback, runs_exactly_once_when_the_last_owner_dies_with_either_signature) {
  event_log log;
  auto obj = weakref::make_shared<widget>(log, "w");
  auto second = obj;
  int calls = 0, calls_with_ref = 0;
  ref<widget> r(obj, [&calls] { ++calls; });
  ref<widget> r_arg(obj, [&calls_with_ref](const ref<widget>&) { ++calls_with_ref; });
  EXPECT_TRUE(r.has_callback());
  EXPECT_TRUE(r_arg.has_callback());
  obj.reset();
  EXPECT_EQ(calls + calls_with_ref, 0);
  second.reset();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(calls_with_ref, 1);
  EXPECT_FALSE(r.has_callback());
  ref<widget> copy = r;
  copy = {};
  r = {};
  r_arg = {};
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(calls_with_ref, 1);
}

TEST(ref_callback, receives_the_registered_ref_already_dead) {
  event_log log;
  auto obj = weakref::make_shared<widget>(log, "w");
  std::optional<ref<widget>> handle;
  int calls = 0;
  handle.emplace(obj, [&](const ref<widget>& dead) {
    ++calls;
    EXPECT_EQ(dead, *handle);
    EXPECT_EQ(dead.owner_hash(), handle->owner_hash());
    EXPECT_FALSE(dead.alive());
    EXPECT_EQ(dead.lock(), nullptr);
    EXPECT_FALSE(dead.has_callback());
    EXPECT_FALSE(handle->has_callback());
    EXPECT_EQ(log.size(), 0u);  // the object's destructor has not run yet
  });
  obj.reset();
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(log.events, ElementsAre("~w"));
}

TEST(ref_callback, every_weak_reference_answers_nullptr_inside_every_callback) {
  event_log log;
  auto obj = weakref::make_shared<widget>(log, "w");
  ref<widget> canonical(obj);
  weakref::proxy<widget> canonical_proxy(obj);
  std::optional<ref<widget>> r1, r2;
  std::optional<weakref::proxy<widget>> p1;
  std::optional<weakref::weak_method<widget, int>> wm;
  int checks = 0;
  auto check = [&](const std::string& who) {
    ++checks;
    log.add(who);
    EXPECT_EQ(canonical.lock(), nullptr) << who;
    EXPECT_FALSE(canonical.alive()) << who;
    EXPECT_FALSE(r1->alive() || r2->alive() || p1->alive() || wm->alive()) << who;
    EXPECT_EQ(r1->lock(), nullptr) << who;
    EXPECT_EQ((*r2)(), nullptr) << who;
    EXPECT_FALSE(r1->has_callback() || r2->has_callback()) << who;
    EXPECT_FALSE(canonical_proxy.alive()) << who;
    EXPECT_THROW((void)canonical_proxy->size(), weakref::reference_error) << who;
    EXPECT_EQ((*wm)(), std::nullopt) << who;
  };
  r1.emplace(obj, [&] { check("r1"); });
  p1.emplace(obj, [&] { check("p1"); });
  wm.emplace(obj, &widget::size, [&] { check("wm"); });
  weakref::finalize f(obj, [&] { check("f"); });
  r2.emplace(obj, [&] { check("r2"); });
  obj.reset();
  EXPECT_EQ(checks, 5);
  EXPECT_THAT(log.events, ElementsAre("r2", "f", "wm", "p1", "r1", "~w"));
}

// CPython 3.11: r1 = ref(o, cb); r2 = ref(o, cb); p1 = proxy(o, cb); r3 = ref(o, cb); del o
// -> r3, p1, r2, r1.
TEST(ref_callback, run_newest_first_like_cpython) {
  event_log log;
  auto obj = weakref::make_shared<widget>(log, "w");
  ref<widget> r1(obj, [&log] { log.add("r1"); });
  ref<widget> r2(obj, [&log](const ref<widget>&) { log.add("r2"); });
  weakref::proxy<widget> p1(obj, [&log] { log.add("p1"); });
  ref<widget> r3(obj, [&log] { log.add("r3"); });
  obj.reset();
  EXPECT_THAT(log.events, ElementsAre("r3", "p1", "r2", "r1", "~w"));
}

// CPython 3.11: r1, WeakMethod wm1, finalize f1, proxy p1, r2, finalize f2 (all with
// callbacks), del o -> f2, r2, p1, f1, wm1, r1.
TEST(ref_callback, newest_first_spans_refs_proxies_weak_methods_and_finalizers) {
  event_log log;
  auto obj = weakref::make_shared<widget>(log, "w");
  ref<widget> r1(obj, [&log] { log.add("r1"); });
  weakref::weak_method wm1(obj, &widget::size, [&log] { log.add("wm1"); });
  weakref::finalize f1(obj, [&log] { log.add("f1"); });
  weakref::proxy<widget> p1(obj, [&log](const weakref::proxy<widget>&) { log.add("p1"); });
  ref<widget> r2(obj, [&log] { log.add("r2"); });
  weakref::finalize f2(obj, [&log] { log.add("f2"); });
  obj.reset();
  EXPECT_THAT(log.events, ElementsAre("f2", "r2", "p1", "f1", "wm1", "r1", "~w"));
}

struct parent : tracked {
  parent(event_log& log, std::shared_ptr<widget> first, std::shared_ptr<widget> second)
      : tracked(log, "parent"), first_(std::move(first)), second_(std::move(second)) {}
  ~parent() override {
    log().add("~parent begins");
    first_.reset();
    second_.reset();
  }

 private:
  std::shared_ptr<widget> first_, second_;
};

TEST(ref_callback, an_object_calls_back_before_the_children_its_destructor_releases) {
  event_log log;
  auto a = weakref::make_shared<widget>(log, "a");
  auto b = weakref::make_shared<widget>(log, "b");
  ref<widget> ra(a, [&log] { log.add("cb a"); });
  ref<widget> rb(b, [&log] { log.add("cb b"); });
  auto p = weakref::make_shared<parent>(log, std::move(a), std::move(b));
  ref<parent> rp1(p, [&log] { log.add("cb parent 1"); });
  ref<parent> rp2(p, [&log] { log.add("cb parent 2"); });
  p.reset();
  EXPECT_THAT(log.events, ElementsAre("cb parent 2", "cb parent 1", "~parent begins", "cb a", "~a",
                                      "cb b", "~b", "~parent"));
}

TEST(ref_callback, never_runs_once_every_copy_of_its_ref_is_gone) {
  event_log log;
  auto obj = weakref::make_shared<widget>(log, "w");
  {
    ref<widget> r(obj, [&log] { log.add("dropped"); });
    ref<widget> copy = r;
    EXPECT_EQ(weakref::getweakrefcount(obj), 1u);
  }
  EXPECT_EQ(weakref::getweakrefcount(obj), 0u);
  ref<widget>(obj, [&log] { log.add("never stored"); });
  obj.reset();
  EXPECT_THAT(log.events, ElementsAre("~w"));
}

TEST(ref_callback, a_surviving_copy_keeps_the_callback_registered) {
  event_log log;
  auto obj = weakref::make_shared<widget>(log, "w");
  std::optional<ref<widget>> copy;
  {
    ref<widget> original(obj, [&](const ref<widget>& dead) {
      log.add("cb");
      EXPECT_EQ(dead, *copy);
    });
    copy = original;
  }
  EXPECT_TRUE(copy->has_callback());
  obj.reset();
  EXPECT_THAT(log.events, ElementsAre("cb", "~w"));
}

// CPython 3.11: ra1 = ref(A, cb1); ra2 = ref(A, cb2 that does `del ra1`); del A -> ra2, ra1.
TEST(ref_callback, dropping_a_pending_ref_inside_a_callback_does_not_cancel_it) {
  event_log log;
  auto obj = weakref::make_shared<widget>(log, "w");
  std::optional<ref<widget>> ra1;
  ra1.emplace(obj, [&log] { log.add("ra1"); });
  ref<widget> ra2(obj, [&] {
    log.add("ra2");
    ra1.reset();  // the last copy of a ref whose callback has not run yet
  });
  obj.reset();
  EXPECT_FALSE(ra1.has_value());
  EXPECT_THAT(log.events, ElementsAre("ra2", "ra1", "~w"));
}

// CPython 3.11: rb = ref(B, cb); ra1, ra2, ra3 = ref(A, cb) x3, ra3's callback drops B; del A
// -> ra3, rb, ra2, ra1.
TEST(ref_callback, a_death_inside_a_callback_runs_its_callbacks_nested_depth_first) {
  event_log log;
  auto a = weakref::make_shared<widget>(log, "a");
  auto b = weakref::make_shared<widget>(log, "b");
  ref<widget> rb(b, [&log] { log.add("rb"); });
  ref<widget> ra1(a, [&log] { log.add("ra1"); });
  ref<widget> ra2(a, [&log] { log.add("ra2"); });
  ref<widget> ra3(a, [&] {
    log.add("ra3");
    b.reset();
  });
  a.reset();
  EXPECT_THAT(log.events, ElementsAre("ra3", "rb", "~b", "ra2", "ra1", "~a"));
}

TEST(ref_callback, a_callback_may_create_refs_to_another_object) {
  event_log log;
  auto a = weakref::make_shared<widget>(log, "a");
  auto b = weakref::make_shared<widget>(log, "b");
  std::vector<ref<widget>> made;
  ref<widget> ra(a, [&] {
    made.emplace_back(b);
    made.emplace_back(
        b, [&log](const ref<widget>& dead) { log.add(dead.alive() ? "rb alive" : "rb dead"); });
  });
  a.reset();
  ASSERT_EQ(made.size(), 2u);
  EXPECT_EQ(weakref::getweakrefcount(b), 2u);
  EXPECT_EQ(made[0].lock(), b);
  b.reset();
  EXPECT_THAT(log.events, ElementsAre("~a", "rb dead", "~b"));
}

// A callback whose destructor reads the handle it was given to: the old callback of a handle
// being assigned over goes with its weak reference object, during the assignment.
struct numbered {
  int number;
  int get() const { return number; }
};
template <class Handle, class Read>
struct reads_when_destroyed {
  Handle* handle;
  const bool* armed;
  int* seen;
  Read read;
  void operator()() const {}
  ~reads_when_destroyed() {
    if (*armed) *seen = read(*handle);
  }
};

// Assigning over a ref, proxy or weak_method lets go of its old weak reference object last, so
// the old callback's destructor (user code) finds the handle whole: the new object, through
// the new pointer (not the new object with the old pointer).
template <class Handle, class Make, class Read>
void expect_an_assignment_is_whole_before_the_old_callback_goes(Make make, Read read) {
  auto one = weakref::make_shared<numbered>(numbered{1});
  auto two = weakref::make_shared<numbered>(numbered{2});
  bool armed = false;
  int seen = 0;
  std::optional<Handle> handle;
  handle.emplace(make(one, reads_when_destroyed<Handle, Read>{&*handle, &armed, &seen, read}));
  Handle replacement = make(two, [] {});
  armed = true;
  *handle = replacement;  // the old node's last handle: its callback is destroyed here
  armed = false;
  EXPECT_EQ(seen, 2);
  handle.emplace(make(one, reads_when_destroyed<Handle, Read>{&*handle, &armed, &seen, read}));
  armed = true;
  *handle = make(two, [] {});  // and by a move
  armed = false;
  EXPECT_EQ(seen, 2);
}

TEST(ref_callback, an_old_callbacks_destructor_sees_the_assigned_handle_whole) {
  using object = std::shared_ptr<numbered>;
  expect_an_assignment_is_whole_before_the_old_callback_goes<ref<numbered>>(
      [](const object& o, auto callback) { return ref<numbered>(o, std::move(callback)); },
      [](const ref<numbered>& r) { return r()->get(); });
  expect_an_assignment_is_whole_before_the_old_callback_goes<weakref::proxy<numbered>>(
      [](const object& o, auto callback) {
        return weakref::proxy<numbered>(o, std::move(callback));
      },
      [](const weakref::proxy<numbered>& p) { return p->get(); });
  using method = weakref::weak_method<numbered, int>;
  expect_an_assignment_is_whole_before_the_old_callback_goes<method>(
      [](const object& o, auto callback) { return method(o, &numbered::get, std::move(callback)); },
      [](const method& m) { return m().value_or(-1); });
}

TEST(ref_callback, exceptions_go_to_the_unraisable_hook_and_the_rest_still_runs) {
  event_log log;
  capture_unraisable capture(log);
  auto obj = weakref::make_shared<widget>(log, "w");
  ref<widget> r1(obj, [&log] { log.add("first"); });
  ref<widget> r2(obj, [] { throw std::runtime_error("boom"); });
  ref<widget> r3(obj, [] { throw 7; });
  ref<widget> r4(obj, [&log] { log.add("fourth"); });
  EXPECT_NO_THROW(obj.reset());
  EXPECT_THAT(log.events, ElementsAre("fourth", "unraisable weakref callback: int 7",
                                      "unraisable weakref callback: boom", "first", "~w"));
}

TEST(ref_callback, default_unraisable_hook_prints_one_line_to_stderr) {
  auto previous = weakref::set_unraisable_hook({});  // make sure the default is installed
  event_log log;
  auto obj = weakref::make_shared<widget>(log, "w");
  ref<widget> r(obj, [] { throw std::logic_error("callback failed"); });
  testing::internal::CaptureStderr();
  obj.reset();
  const std::string printed = testing::internal::GetCapturedStderr();
  weakref::set_unraisable_hook(std::move(previous));
  EXPECT_EQ(printed, "weakref: exception ignored in weakref callback: callback failed\n");
  EXPECT_THAT(log.events, ElementsAre("~w"));
}

// Python: ref(o, None) is ref(o), with no callback. An empty callable is no callback: the
// canonical ref, has_callback() false, and nothing called (or reported) at death.
TEST(ref_callback, an_empty_callback_is_no_callback) {
  event_log log;
  capture_unraisable capture(log);
  auto obj = weakref::make_shared<widget>(log, "w");
  ref<widget> plain(obj);
  ref<widget> empty_function(obj, std::function<void()>());
  ref<widget> empty_with_ref(obj, std::function<void(const ref<widget>&)>());
  void (*null_pointer)() = nullptr;
  ref<widget> from_null_pointer(obj, null_pointer);
  for (const auto* r : {&empty_function, &empty_with_ref, &from_null_pointer}) {
    EXPECT_FALSE(r->has_callback());
    EXPECT_TRUE(weakref::same_ref(*r, plain));
  }
  EXPECT_EQ(weakref::getweakrefcount(obj), 1u);
  ref<widget> with_callback(obj, std::function<void()>([&log] { log.add("cb"); }));
  EXPECT_TRUE(with_callback.has_callback());
  EXPECT_EQ(weakref::getweakrefcount(obj), 2u);
  obj.reset();
  EXPECT_THAT(log.events, ElementsAre("cb", "~w"));  // no "unraisable ...: bad_function_call"
}

}  // namespace
