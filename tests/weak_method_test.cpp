// Tests for weakref::weak_method: deduction, result types, calls holding the object, argument
// forwarding, equality, callbacks and how each weak_method counts in getweakrefcount.
#include "weakref/weak_method.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/type_error_message.hpp"
#include "support/unraisable_log.hpp"
#include "weakref/errors.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/unraisable.hpp"

namespace {

struct Widget {
  explicit Widget(int v, int* destructions = nullptr) : value(v), destructions(destructions) {}
  Widget(const Widget&) = delete;
  Widget& operator=(const Widget&) = delete;
  ~Widget() {
    if (destructions) ++*destructions;
  }

  int add(int k) {
    ++calls;
    return value += k;
  }
  int get() const { return value; }
  int twice() noexcept { return 2 * value; }
  int thrice() const noexcept { return 3 * value; }
  void set(int v) { value = v; }
  int& slot() { return value; }
  const int& const_slot() const { return value; }
  std::string label(const std::string& prefix, int n) const {
    return prefix + std::to_string(n + value);
  }
  void take(std::unique_ptr<int> p) { value = *p; }
  void take_string(std::string&& s) { text = std::move(s); }
  void write_to(int& out) const { out = value; }
  std::unique_ptr<int> boxed() const { return std::make_unique<int>(value); }
  std::string&& moved_text() { return std::move(text); }
  // Drops `owner` (the last strong reference outside) and reports whether ~Widget ran by then.
  bool drop_owner(std::shared_ptr<Widget>* owner) {
    owner->reset();
    return *destructions != 0;
  }

  int value;
  std::string text;
  int calls = 0;
  int* destructions;
};

struct Base {
  virtual ~Base() = default;
  virtual std::string name() const { return "base"; }
  int base_only(int k) { return k + 100; }
};
struct Padding {
  int pad = 0;
  virtual ~Padding() = default;
};
struct Derived : Padding, Base {  // Base is not at offset 0
  std::string name() const override { return "derived"; }
};

// A const method through a pointer to const (a non-const method cannot be bound through one).
static_assert(std::is_constructible_v<weakref::weak_method<Widget, int>,
                                      std::shared_ptr<const Widget>, int (Widget::*)() const>);
static_assert(!std::is_constructible_v<weakref::weak_method<Widget, int, int>,
                                       std::shared_ptr<const Widget>, int (Widget::*)(int)>);

TEST(weak_method, binds_a_const_method_through_a_pointer_to_const) {
  int destructions = 0;
  auto obj = weakref::make_shared<Widget>(5, &destructions);
  std::shared_ptr<const Widget> const_obj = obj;
  weakref::weak_method get(const_obj, &Widget::get);
  static_assert(std::is_same_v<decltype(get), weakref::weak_method<Widget, int>>);
  weakref::weak_method thrice(const_obj, &Widget::thrice);
  weakref::weak_method label(const_obj, &Widget::label);
  int callbacks = 0;
  weakref::weak_method with_callback(const_obj, &Widget::get, [&callbacks] { ++callbacks; });
  EXPECT_EQ(get(), 5);
  EXPECT_EQ(thrice(), 15);
  EXPECT_EQ(label("n", 1), "n6");
  EXPECT_EQ(with_callback(), 5);
  EXPECT_EQ(get, weakref::weak_method(obj, &Widget::get));  // same object, same method
  obj->set(7);
  EXPECT_EQ(get(), 7);
  EXPECT_EQ(weakref::getweakrefcount(const_obj), 4u);
  obj.reset();
  const_obj.reset();
  EXPECT_EQ(destructions, 1);
  EXPECT_EQ(callbacks, 1);
  EXPECT_EQ(get(), std::nullopt);
  EXPECT_EQ(with_callback(), std::nullopt);
}

// Python: WeakMethod(m, None) has no callback. An empty callable is no callback: nothing is
// called or reported at death, and getweakrefs sees a weak reference without a callback.
TEST(weak_method, an_empty_callback_is_no_callback) {
  unraisable_log unraisable;
  auto obj = weakref::make_shared<Widget>(1);
  weakref::weak_method m(obj, &Widget::get, std::function<void()>());
  using method = weakref::weak_method<Widget, int>;
  void (*null_pointer)() = nullptr;
  weakref::weak_method n(obj, &Widget::get, null_pointer);
  method from_function_with_arg(obj, &Widget::get, std::function<void(const method&)>());
  auto all = weakref::getweakrefs(obj);
  ASSERT_EQ(all.size(), 3u);  // each weak_method is its own weak reference object
  for (const auto& r : all) EXPECT_FALSE(r.has_callback());
  all.clear();
  EXPECT_EQ(m(), 1);
  obj.reset();
  EXPECT_EQ(m(), std::nullopt);
  EXPECT_TRUE(unraisable.entries.empty());
}

}  // namespace

TEST(weak_method, deduces_from_plain_const_and_noexcept_methods) {
  auto w = weakref::make_shared<Widget>(5);
  weakref::weak_method add(w, &Widget::add);
  weakref::weak_method get(w, &Widget::get);
  weakref::weak_method twice(w, &Widget::twice);
  weakref::weak_method thrice(w, &Widget::thrice);
  weakref::weak_method label(w, &Widget::label);
  weakref::weak_method with_callback(w, &Widget::thrice, [] {});
  static_assert(std::is_same_v<decltype(add), weakref::weak_method<Widget, int, int>>);
  static_assert(std::is_same_v<decltype(get), weakref::weak_method<Widget, int>>);
  static_assert(std::is_same_v<decltype(twice), weakref::weak_method<Widget, int>>);
  static_assert(std::is_same_v<decltype(thrice), weakref::weak_method<Widget, int>>);
  static_assert(std::is_same_v<decltype(label),
                               weakref::weak_method<Widget, std::string, const std::string&, int>>);
  static_assert(std::is_same_v<decltype(with_callback), weakref::weak_method<Widget, int>>);
  EXPECT_EQ(add(1), 6);
  EXPECT_EQ(get(), 6);
  EXPECT_EQ(twice(), 12);
  EXPECT_EQ(thrice(), 18);
  EXPECT_EQ(label("n=", 1), "n=7");
  EXPECT_EQ(with_callback(), 18);
}

TEST(weak_method, deduces_a_base_class_method_through_a_derived_pointer) {
  auto d = weakref::make_shared<Derived>();
  weakref::weak_method name(d, &Base::name);               // virtual: dispatches to Derived
  weakref::weak_method base_only(d, &Derived::base_only);  // &Derived::base_only is Base's
  static_assert(std::is_same_v<decltype(name), weakref::weak_method<Base, std::string>>);
  static_assert(std::is_same_v<decltype(base_only), weakref::weak_method<Base, int, int>>);
  EXPECT_EQ(name(), "derived");
  EXPECT_EQ(base_only(1), 101);
  d.reset();
  EXPECT_EQ(name(), std::nullopt);
  EXPECT_EQ(base_only(1), std::nullopt);
}

TEST(weak_method, result_is_optional_bool_optional_reference_wrapper_or_moved_value) {
  auto w = weakref::make_shared<Widget>(1);
  weakref::weak_method get(w, &Widget::get);
  weakref::weak_method set(w, &Widget::set);
  weakref::weak_method slot(w, &Widget::slot);
  weakref::weak_method const_slot(w, &Widget::const_slot);
  weakref::weak_method boxed(w, &Widget::boxed);
  static_assert(std::is_same_v<decltype(get()), std::optional<int>>);
  static_assert(std::is_same_v<decltype(set(0)), bool>);
  static_assert(std::is_same_v<decltype(slot()), std::optional<std::reference_wrapper<int>>>);
  static_assert(
      std::is_same_v<decltype(const_slot()), std::optional<std::reference_wrapper<const int>>>);
  static_assert(std::is_same_v<decltype(boxed()), std::optional<std::unique_ptr<int>>>);
  // An rvalue reference result is moved out while the call holds the object.
  weakref::weak_method moved_text(w, &Widget::moved_text);
  static_assert(std::is_same_v<decltype(moved_text()), std::optional<std::string>>);

  EXPECT_TRUE(set(4));
  EXPECT_EQ(w->value, 4);
  EXPECT_EQ(get(), std::optional<int>(4));
  auto r = slot();
  ASSERT_TRUE(r.has_value());
  r->get() = 9;  // refers to the object's member itself
  EXPECT_EQ(w->value, 9);
  EXPECT_EQ(&const_slot()->get(), &w->value);
  auto b = boxed();
  ASSERT_TRUE(b.has_value() && *b);
  EXPECT_EQ(**b, 9);
  w->text = std::string(40, 'x');  // longer than the small-string buffer: moving empties it
  EXPECT_EQ(moved_text(), std::optional<std::string>(std::string(40, 'x')));
  EXPECT_TRUE(w->text.empty());
}

TEST(weak_method, returns_nullopt_or_false_once_dead_without_calling) {
  int destructions = 0;
  auto w = weakref::make_shared<Widget>(1, &destructions);
  weakref::weak_method add(w, &Widget::add);
  weakref::weak_method set(w, &Widget::set);
  weakref::weak_method slot(w, &Widget::slot);
  EXPECT_TRUE(add.alive());
  EXPECT_EQ(add(1), 2);
  EXPECT_EQ(w->calls, 1);
  w.reset();
  EXPECT_EQ(destructions, 1);
  EXPECT_FALSE(add.alive());
  EXPECT_EQ(add(1), std::nullopt);
  EXPECT_FALSE(set(3));
  EXPECT_FALSE(slot().has_value());
}

TEST(weak_method, call_holds_the_object_until_the_method_returns) {
  int destructions = 0;
  auto owner = weakref::make_shared<Widget>(1, &destructions);
  weakref::weak_method drop(owner, &Widget::drop_owner);
  const std::optional<bool> destroyed_during_call = drop(&owner);
  EXPECT_EQ(destroyed_during_call, std::optional<bool>(false));  // the method completed
  EXPECT_EQ(owner, nullptr);
  EXPECT_EQ(destructions, 1);  // ~Widget ran after the call returned
  EXPECT_FALSE(drop.alive());
  EXPECT_EQ(drop(&owner), std::nullopt);
}

TEST(weak_method, forwards_arguments_including_move_only_and_references) {
  auto w = weakref::make_shared<Widget>(1);
  weakref::weak_method take(w, &Widget::take);
  static_assert(
      std::is_same_v<decltype(take), weakref::weak_method<Widget, void, std::unique_ptr<int>>>);
  EXPECT_TRUE(take(std::make_unique<int>(42)));
  EXPECT_EQ(w->value, 42);
  auto p = std::make_unique<int>(7);
  EXPECT_TRUE(take(std::move(p)));
  EXPECT_EQ(w->value, 7);
  int out = 0;
  weakref::weak_method write_to(w, &Widget::write_to);
  EXPECT_TRUE(write_to(out));  // int& parameter: writes into `out`
  EXPECT_EQ(out, 7);
  weakref::weak_method take_string(w, &Widget::take_string);  // rvalue reference parameter
  std::string moved = "moved";
  EXPECT_TRUE(take_string(std::move(moved)));
  EXPECT_EQ(w->text, "moved");
  const std::string prefix = "v";
  weakref::weak_method label(w, &Widget::label);
  EXPECT_EQ(label(prefix, 3), "v10");
}

TEST(weak_method, equal_for_same_object_and_method_before_and_after_death) {
  auto a = weakref::make_shared<Widget>(1);
  auto b = weakref::make_shared<Widget>(1);
  weakref::weak_method get_a1(a, &Widget::get);
  weakref::weak_method get_a2(a, &Widget::get);
  weakref::weak_method get_a_cb(a, &Widget::get, [] {});
  weakref::weak_method get_b(b, &Widget::get);
  weakref::weak_method twice_a(a, &Widget::twice);  // same signature, other method
  const auto copy = get_a1;
  auto check = [&] {
    EXPECT_TRUE(get_a1 == get_a2);
    EXPECT_TRUE(get_a1 == get_a_cb);
    EXPECT_TRUE(get_a1 == copy);
    EXPECT_FALSE(get_a1 == get_b);
    EXPECT_FALSE(get_a1 == twice_a);
    EXPECT_TRUE(get_a1 != twice_a);
  };
  check();
  a.reset();  // CPython differs here (identity once dead); ours is stable
  check();
  b.reset();
  check();
}

TEST(weak_method, callback_runs_once_with_the_dead_weak_method) {
  int destructions = 0;
  auto w = weakref::make_shared<Widget>(1, &destructions);
  using get_method = weakref::weak_method<Widget, int>;
  std::vector<std::string> seen;
  std::unique_ptr<get_method> copy;
  auto registered = std::make_unique<get_method>(w, &Widget::get, [&](const get_method& dead) {
    seen.push_back("alive=" + std::to_string(dead.alive()));
    seen.push_back("result=" + std::string(dead().has_value() ? "value" : "nullopt"));
    seen.push_back("same=" + std::to_string(dead == *copy));
    seen.push_back("destructions=" + std::to_string(destructions));
  });
  copy = std::make_unique<get_method>(*registered);
  registered.reset();  // the copy keeps the callback registered
  int plain_calls = 0;
  weakref::weak_method plain(w, &Widget::set, [&] { ++plain_calls; });
  w.reset();
  EXPECT_EQ(seen,
            (std::vector<std::string>{"alive=0", "result=nullopt", "same=1", "destructions=0"}));
  EXPECT_EQ(plain_calls, 1);
  EXPECT_EQ(destructions, 1);
  EXPECT_FALSE(copy->alive());
}

TEST(weak_method, callbacks_run_newest_first_with_refs) {
  auto w = weakref::make_shared<Widget>(1);
  std::vector<std::string> order;
  weakref::weak_method w1(w, &Widget::get, [&] { order.push_back("w1"); });
  weakref::ref<Widget> r1(w, [&] { order.push_back("r1"); });
  weakref::weak_method w2(w, &Widget::twice, [&] { order.push_back("w2"); });
  w.reset();
  EXPECT_EQ(order, (std::vector<std::string>{"w2", "r1", "w1"}));  // CPython: w2, r1, w1
}

TEST(weak_method, callback_of_a_dropped_weak_method_never_runs_and_exceptions_are_reported) {
  unraisable_log reports;
  auto w = weakref::make_shared<Widget>(1);
  int dropped_calls = 0;
  auto dropped = std::make_unique<weakref::weak_method<Widget, int>>(w, &Widget::get,
                                                                     [&] { ++dropped_calls; });
  dropped.reset();
  weakref::weak_method throwing(w, &Widget::get, [] { throw std::runtime_error("boom"); });
  EXPECT_NO_THROW(w.reset());
  EXPECT_EQ(dropped_calls, 0);
  EXPECT_EQ(reports.entries, (std::vector<std::string>{"weak_method callback: boom"}));
}

TEST(weak_method, each_weak_method_counts_in_getweakrefcount) {
  auto w = weakref::make_shared<Widget>(1);
  const weakref::ref<Widget> r(w);
  EXPECT_EQ(weakref::getweakrefcount(w), 1u);
  auto m1 = std::make_unique<weakref::weak_method<Widget, int>>(w, &Widget::get);
  weakref::weak_method m2(w, &Widget::get);    // same method: still its own object
  EXPECT_EQ(weakref::getweakrefcount(w), 3u);  // CPython: ref + 2 WeakMethods -> 3
  const auto copy = m2;  // NOLINT(performance-unnecessary-copy-initialization): copies share
  EXPECT_TRUE(copy == m2);
  const weakref::ref<Widget> r2(w);  // shares the canonical ref
  EXPECT_EQ(weakref::getweakrefcount(w), 3u);
  weakref::weak_method m3(w, &Widget::twice, [] {});
  EXPECT_EQ(weakref::getweakrefcount(w), 4u);
  auto refs = weakref::getweakrefs(w);  // canonical ref first, then newest first
  ASSERT_EQ(refs.size(), 4u);
  EXPECT_FALSE(refs[0].has_callback());
  EXPECT_TRUE(refs[1].has_callback());
  EXPECT_FALSE(refs[2].has_callback());
  EXPECT_FALSE(refs[3].has_callback());
  m1.reset();
  EXPECT_EQ(weakref::getweakrefcount(w), 4u);  // `refs` still holds m1's weak reference
  refs.clear();
  EXPECT_EQ(weakref::getweakrefcount(w), 3u);
}

TEST(weak_method, dropping_a_weak_method_unlinks_it) {
  auto w = weakref::make_shared<Widget>(1);
  auto m1 = std::make_unique<weakref::weak_method<Widget, int>>(w, &Widget::get);
  weakref::weak_method m2(w, &Widget::get);
  EXPECT_EQ(weakref::getweakrefcount(w), 2u);
  m1.reset();
  EXPECT_EQ(weakref::getweakrefcount(w), 1u);
  EXPECT_EQ(m2(), 1);
}

TEST(weak_method, rejects_pointers_not_made_by_weakref_make_shared) {
  auto plain = std::make_shared<Widget>(1);
  const std::string not_made =
      type_error_message([&] { weakref::weak_method<Widget, int> m(plain, &Widget::get); });
  EXPECT_NE(not_made.find("was not created by weakref::make_shared"), std::string::npos)
      << not_made;
  EXPECT_NE(not_made.find("weak_method"), std::string::npos) << not_made;
  const std::string with_cb =
      type_error_message([&] { weakref::weak_method<Widget, int> m(plain, &Widget::get, [] {}); });
  EXPECT_NE(with_cb.find("was not created by weakref::make_shared"), std::string::npos);
  const std::string empty = type_error_message(
      [] { weakref::weak_method<Widget, int> m(std::shared_ptr<Widget>(), &Widget::get); });
  EXPECT_NE(empty.find("is empty"), std::string::npos) << empty;
  EXPECT_EQ(plain->value, 1);
}
