// Tests for weakref::proxy callbacks: the callback gets the dead proxy before the destructor,
// runs once, newest first with refs' callbacks, never runs once its proxy is dropped, and its
// exceptions go to the unraisable hook.
#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/proxy_helpers.hpp"
#include "support/unraisable_log.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/proxy.hpp"
#include "weakref/ref.hpp"
#include "weakref/unraisable.hpp"

namespace {
using proxy_helpers::Account;
using proxy_helpers::kDeadMessage;
using proxy_helpers::reference_error_message;
// Python: proxy(o, None) is proxy(o). An empty callable is no callback: the canonical proxy,
// and nothing reported at death.
TEST(proxy_callback, an_empty_callback_is_no_callback) {
  unraisable_log unraisable;
  auto account = weakref::make_shared<Account>(1);
  weakref::proxy<Account> plain(account);
  weakref::proxy<Account> empty_function(account, std::function<void()>());
  void (*null_pointer)() = nullptr;
  weakref::proxy<Account> from_null_pointer(account, null_pointer);
  EXPECT_TRUE(weakref::same_ref(empty_function, plain));
  EXPECT_TRUE(weakref::same_ref(from_null_pointer, plain));
  EXPECT_EQ(weakref::getweakrefcount(account), 1u);
  auto all = weakref::getweakrefs(account);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_FALSE(all[0].has_callback());
  all.clear();
  account.reset();
  EXPECT_TRUE(unraisable.entries.empty());
}

}  // namespace

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
  unraisable_log reports;
  auto account = weakref::make_shared<Account>(0);
  const weakref::proxy<Account> p(account, [] { throw std::runtime_error("boom"); });
  EXPECT_NO_THROW(account.reset());
  EXPECT_EQ(reports.entries, (std::vector<std::string>{"proxy callback: boom"}));
}
