// Tests for weakref::proxy: forwarding through operator-> and operator(), keeping the object
// alive for the whole expression, reference_error once dead, callbacks, canonical sharing
// (counted as CPython's getweakrefcount does) and use from several threads.
#include "weakref/proxy.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <concepts>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "weakref/errors.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/unraisable.hpp"

namespace {

const std::string kDeadMessage = "weakly-referenced object no longer exists";

struct Account {
  explicit Account(int initial, int* destructions = nullptr)
      : balance(initial), destructions(destructions) {}
  Account(const Account&) = delete;
  Account& operator=(const Account&) = delete;
  ~Account() {
    if (destructions) ++*destructions;
  }
  void deposit(int amount) { balance += amount; }
  int get() const { return balance; }
  // Drops `owner` (the last strong reference outside the proxy) and reports whether the
  // destructor has run by then.
  bool drop_owner(std::shared_ptr<Account>& owner) {
    owner.reset();
    return *destructions != 0;
  }
  int balance;
  std::string name = "acct";
  int* destructions;
};

// The message of the reference_error `f` throws, or "no exception".
template <class F>
std::string reference_error_message(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const weakref::reference_error& e) {
    return e.what();
  }
  return "no exception";
}

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

TEST(proxy, callback_receives_the_dead_proxy_before_the_destructor) {
  int destructions = 0;
  auto account = weakref::make_shared<Account>(0, &destructions);
  const weakref::proxy<Account> canonical(account);
  std::vector<std::string> seen;
  const weakref::proxy<Account> p(account, [&](const weakref::proxy<Account>& dead) {
    seen.push_back("alive=" + std::to_string(dead.alive()));
    seen.push_back(reference_error_message([&] { dead->deposit(1); }));
    seen.push_back("canonical alive=" + std::to_string(canonical.alive()));
    seen.push_back("destructions=" + std::to_string(destructions));
  });
  EXPECT_TRUE(seen.empty());
  account.reset();
  EXPECT_EQ(seen, (std::vector<std::string>{"alive=0", kDeadMessage, "canonical alive=0",
                                            "destructions=0"}));
  EXPECT_EQ(destructions, 1);
}

TEST(proxy, callbacks_run_once_newest_first_with_refs) {
  auto account = weakref::make_shared<Account>(0);
  std::vector<std::string> order;
  const weakref::proxy<Account> p1(account, [&] { order.push_back("p1"); });
  const weakref::ref<Account> r(account, [&] { order.push_back("r"); });
  auto p2 = std::make_unique<weakref::proxy<Account>>(
      account, [&](const weakref::proxy<Account>&) { order.push_back("p2"); });
  const auto p2_copy = *p2;
  p2.reset();  // the copy keeps the callback registered; it still runs once
  account.reset();
  EXPECT_EQ(order, (std::vector<std::string>{"p2", "r", "p1"}));  // CPython: ['p2', 'r', 'p1']
  EXPECT_FALSE(p2_copy.alive());
}

TEST(proxy, callback_of_a_dropped_proxy_never_runs) {
  auto account = weakref::make_shared<Account>(0);
  int calls = 0;
  auto p = std::make_unique<weakref::proxy<Account>>(account, [&] { ++calls; });
  auto copy = *p;
  p.reset();
  EXPECT_EQ(weakref::getweakrefcount(account), 1u);  // the copy keeps it registered
  copy = weakref::proxy<Account>(account);           // the last handle to the callback proxy goes
  EXPECT_EQ(weakref::getweakrefcount(account), 1u);  // only the canonical proxy now
  account.reset();
  EXPECT_EQ(calls, 0);
}

TEST(proxy, callback_exceptions_go_to_the_unraisable_hook) {
  std::vector<std::string> reports;
  auto previous = weakref::set_unraisable_hook([&](const weakref::unraisable& u) {
    try {
      std::rethrow_exception(u.error);
    } catch (const std::exception& e) {
      reports.push_back(std::string(u.where) + ": " + e.what());
    }
  });
  auto account = weakref::make_shared<Account>(0);
  const weakref::proxy<Account> p(account, [] { throw std::runtime_error("boom"); });
  EXPECT_NO_THROW(account.reset());
  weakref::set_unraisable_hook(std::move(previous));
  EXPECT_EQ(reports, (std::vector<std::string>{"proxy callback: boom"}));
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
  const auto message = [](auto make) -> std::string {
    try {
      make();
    } catch (const weakref::type_error& e) {
      return e.what();
    }
    return "no exception";
  };
  const std::string not_made = message([&] { weakref::proxy<Account>{plain}; });
  EXPECT_NE(not_made.find("was not created by weakref::make_shared"), std::string::npos)
      << not_made;
  const std::string with_cb = message([&] { weakref::proxy<Account>(plain, [] {}); });
  EXPECT_NE(with_cb.find("was not created by weakref::make_shared"), std::string::npos);
  const std::string empty = message([] { weakref::proxy<Account>{std::shared_ptr<Account>()}; });
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
