// Tests for weakref::proxy: forwarding through operator-> and operator(), keeping the object
// alive for the whole expression, reference_error once dead, canonical sharing (counted as
// CPython's getweakrefcount does) through base, derived and aliasing pointers, copies, and
// non-weakrefable pointers. Also: proxy_callback_test.cpp, proxy_threads_test.cpp.
#include "weakref/proxy.hpp"

#include <gtest/gtest.h>

#include <concepts>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "support/proxy_helpers.hpp"
#include "support/type_error_message.hpp"
#include "weakref/errors.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"

namespace {
using proxy_helpers::Account;
using proxy_helpers::kDeadMessage;
using proxy_helpers::reference_error_message;
}  // namespace

TEST(proxy, arrow_calls_methods_and_reads_and_writes_members) {
  auto account = weakref::make_shared<Account>(100);
  const weakref::proxy<Account> p(account);
  p->deposit(5);
  EXPECT_EQ(account->balance, 105);
  EXPECT_EQ(p->get(), 105);
  p->balance = 7;
  p->name += "-renamed";
  EXPECT_EQ(account->balance, 7);
  EXPECT_EQ(p->balance, 7);
  EXPECT_EQ(account->name, "acct-renamed");
  EXPECT_EQ(p->name.size(), 12u);
}

TEST(proxy, arrow_keeps_the_object_alive_for_the_whole_expression) {
  int destructions = 0;
  auto owner = weakref::make_shared<Account>(1, &destructions);
  const weakref::proxy<Account> p(owner);
  // Inside the call and after it, until the end of the full expression, the object lives.
  const bool survived = !p->drop_owner(owner) && destructions == 0;
  EXPECT_TRUE(survived);
  EXPECT_EQ(owner, nullptr);
  EXPECT_EQ(destructions, 1);  // the destructor ran at the end of that expression
  EXPECT_FALSE(p.alive());
}

TEST(proxy, arrow_throws_reference_error_once_dead) {
  auto account = weakref::make_shared<Account>(3);
  const weakref::proxy<Account> p(account);
  account.reset();
  EXPECT_EQ(reference_error_message([&] { p->deposit(1); }), kDeadMessage);
  EXPECT_EQ(reference_error_message([&] { static_cast<void>(p->balance); }), kDeadMessage);
  EXPECT_EQ(reference_error_message([&] { p->balance = 1; }), kDeadMessage);
  EXPECT_THROW(p->get(), std::runtime_error);
}

TEST(proxy, call_forwards_arguments_and_return_values) {
  auto join = [](int n, const std::string& s) { return s + std::to_string(n); };
  auto fn = weakref::make_shared<decltype(join)>(join);
  const weakref::proxy<decltype(join)> call_join(fn);
  EXPECT_EQ(call_join(42, "x"), "x42");

  struct Counter {
    int total = 0;
    int operator()(int k) { return total += k; }
    int& operator()() { return total; }
    int operator()(std::unique_ptr<int> p) { return total += *p; }
  };
  auto counter = weakref::make_shared<Counter>();
  const weakref::proxy<Counter> count(counter);
  EXPECT_EQ(count(3), 3);
  EXPECT_EQ(count(4), 7);
  static_assert(std::is_same_v<decltype(count()), int&>);
  count() = 20;  // the reference refers into the (alive) object
  EXPECT_EQ(counter->total, 20);
  EXPECT_EQ(count(std::make_unique<int>(5)), 25);  // move-only argument forwarded
}

TEST(proxy, call_keeps_the_object_alive_during_the_call_and_throws_once_dead) {
  struct Dropper {
    std::shared_ptr<Dropper>* owner;
    int* destructions;
    int* calls;
    ~Dropper() { ++*destructions; }
    bool operator()() {
      ++*calls;
      owner->reset();
      return *destructions == 0;
    }
  };
  int destructions = 0;
  int calls = 0;
  std::shared_ptr<Dropper> owner;
  owner = weakref::make_shared<Dropper>(Dropper{&owner, &destructions, &calls});
  destructions = 0;  // the temporary Dropper above was destroyed
  const weakref::proxy<Dropper> p(owner);
  // The strong reference taken by operator() lasts for the call: the object outlives its own
  // operator() and dies as the call returns (the result is a plain value).
  EXPECT_TRUE(p());
  EXPECT_EQ(destructions, 1);
  EXPECT_EQ(reference_error_message([&] { p(); }), kDeadMessage);
  EXPECT_EQ(calls, 1);
}

TEST(proxy, alive_until_the_last_owner_goes) {
  auto account = weakref::make_shared<Account>(0);
  auto other_owner = account;
  const weakref::proxy<Account> p(account);
  EXPECT_TRUE(p.alive());
  account.reset();
  EXPECT_TRUE(p.alive());
  other_owner.reset();
  EXPECT_FALSE(p.alive());
}

TEST(proxy, callback_less_proxies_share_one_canonical_weak_reference_object) {
  auto account = weakref::make_shared<Account>(0);
  auto p1 = std::make_unique<weakref::proxy<Account>>(account);
  auto p2 = std::make_unique<weakref::proxy<Account>>(account);
  EXPECT_EQ(weakref::getweakrefcount(account), 1u);  // CPython: proxy, proxy -> 1
  const weakref::ref<Account> r(account);
  EXPECT_EQ(weakref::getweakrefcount(account), 2u);  // + ref -> 2
  const weakref::proxy<Account> with_callback(account, [] {});
  EXPECT_EQ(weakref::getweakrefcount(account), 3u);  // a proxy with a callback is its own
  const weakref::proxy<Account> with_callback2(account, [] {});
  EXPECT_EQ(weakref::getweakrefcount(account), 4u);
  auto refs = weakref::getweakrefs(account);  // canonical ref, canonical proxy, the others
  ASSERT_EQ(refs.size(), 4u);
  EXPECT_FALSE(refs[0].has_callback());
  EXPECT_FALSE(refs[1].has_callback());
  EXPECT_TRUE(refs[2].has_callback());
  EXPECT_TRUE(refs[3].has_callback());
  refs.clear();
  p1.reset();
  EXPECT_EQ(weakref::getweakrefcount(account), 4u);  // p2 still holds the canonical proxy
  p2.reset();
  EXPECT_EQ(weakref::getweakrefcount(account), 3u);  // CPython: deleting the proxy
  const weakref::proxy<Account> again(account);
  EXPECT_EQ(weakref::getweakrefcount(account), 4u);
}

TEST(proxy, proxies_of_base_and_derived_types_share_the_canonical_proxy) {
  struct Base {
    virtual ~Base() = default;
    virtual std::string kind() const { return "base"; }
    int base_value = 1;
  };
  struct Other {
    int other_value = 2;
  };
  struct Derived : Base, Other {
    std::string kind() const override { return "derived"; }
    struct Inner {
      int x = 3;
    } inner;
  };
  auto derived = weakref::make_shared<Derived>();
  std::shared_ptr<Base> base = derived;
  std::shared_ptr<Other> other = derived;  // a pointer adjusted to the second base
  std::shared_ptr<const Derived> const_derived = derived;
  std::shared_ptr<Derived::Inner> member(derived, &derived->inner);  // aliasing
  const weakref::proxy<Derived> pd(derived);
  const weakref::proxy<Base> pb(base);
  const weakref::proxy<Other> po(other);
  const weakref::proxy<const Derived> pc(const_derived);
  const weakref::proxy<Derived::Inner> alias(member);
  EXPECT_EQ(weakref::getweakrefcount(derived), 1u);
  EXPECT_EQ(pb->kind(), "derived");
  EXPECT_EQ(po->other_value, 2);
  po->other_value = 5;
  EXPECT_EQ(derived->other_value, 5);
  EXPECT_EQ(pc->kind(), "derived");
  EXPECT_EQ(alias->x, 3);
  derived.reset();
  base.reset();
  other.reset();
  const_derived.reset();
  EXPECT_TRUE(pb.alive() && po.alive() && pc.alive() && alias.alive() && pd.alive());
  member.reset();  // the last owner
  EXPECT_FALSE(pb.alive() || po.alive() || pc.alive() || alias.alive() || pd.alive());
  EXPECT_THROW(po->other_value = 1, weakref::reference_error);
}

TEST(proxy, copies_share_one_weak_reference_object) {
  auto account = weakref::make_shared<Account>(0);
  int calls = 0;
  auto original = std::make_unique<weakref::proxy<Account>>(account, [&] { ++calls; });
  weakref::proxy<Account> copy = *original;
  weakref::proxy<Account> assigned(account);
  assigned = copy;
  EXPECT_EQ(weakref::getweakrefcount(account), 1u);  // the canonical one went with `assigned`
  original.reset();
  copy->deposit(2);
  assigned->deposit(3);
  EXPECT_EQ(account->balance, 5);
  account.reset();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(copy.alive());
  EXPECT_FALSE(assigned.alive());
}

TEST(proxy, rejects_pointers_not_made_by_weakref_make_shared) {
  auto plain = std::make_shared<Account>(0);
  const std::string not_made = type_error_message([&] { weakref::proxy<Account>{plain}; });
  EXPECT_NE(not_made.find("was not created by weakref::make_shared"), std::string::npos)
      << not_made;
  const std::string with_cb = type_error_message([&] { weakref::proxy<Account>(plain, [] {}); });
  EXPECT_NE(with_cb.find("was not created by weakref::make_shared"), std::string::npos);
  const std::string empty =
      type_error_message([] { weakref::proxy<Account>{std::shared_ptr<Account>()}; });
  EXPECT_NE(empty.find("is empty"), std::string::npos) << empty;
  EXPECT_THROW(weakref::proxy<Account>{plain}, std::invalid_argument);
  EXPECT_EQ(weakref::getweakrefcount(plain), 0u);
}

TEST(proxy, is_neither_hashable_nor_comparable) {
  // Python proxies are unhashable; API.md: no std::hash, no comparison.
  static_assert(!std::is_default_constructible_v<std::hash<weakref::proxy<int>>>);
  static_assert(!std::is_default_constructible_v<std::hash<weakref::proxy<Account>>>);
  static_assert(!std::equality_comparable<weakref::proxy<Account>>);
  static_assert(std::is_copy_constructible_v<weakref::proxy<Account>>);
  SUCCEED();
}
