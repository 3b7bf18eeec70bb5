// support/proxy_helpers.hpp — what the proxy test files share (include dir: tests/):
// kDeadMessage (reference_error's what()), `Account` (a referent with methods and members that
// can count its destructions) and reference_error_message(f).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "weakref/errors.hpp"

namespace proxy_helpers {

inline const std::string kDeadMessage = "weakly-referenced object no longer exists";

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

}  // namespace proxy_helpers
