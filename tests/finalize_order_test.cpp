// Tests for the order and the errors of weakref::finalize: CPython's test order, interleaving
// newest first with ref and proxy callbacks; an exception at death goes to the unraisable hook
// (the other finalizers still run), one thrown when called propagates; a copy of an argument
// that throws leaves no finalizer behind.
#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include "support/finalize_helpers.hpp"
#include "support/unraisable_log.hpp"
#include "weakref/finalize.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/proxy.hpp"
#include "weakref/ref.hpp"
#include "weakref/unraisable.hpp"

namespace {
using finalize_helpers::strings;
using finalize_helpers::tracked;

}  // namespace

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

namespace {

struct throws_when_copied {
  explicit throws_when_copied(int* copies) : copies(copies) {}
  throws_when_copied(const throws_when_copied& other) : copies(other.copies) {
    if (++*copies == 2) throw std::runtime_error("copy");
  }
  throws_when_copied& operator=(const throws_when_copied&) = delete;
  int* copies;
};

}  // namespace

// The function and arguments are copied before anything is registered: a copy that throws
// leaves nothing (no weak reference counted, nothing run at the death; AddressSanitizer: nothing
// leaked), and the next finalizer works as usual.
TEST(finalize, a_throwing_argument_copy_leaves_nothing_behind) {
  unraisable_log hook;
  auto obj = weakref::make_shared<int>(0);
  int copies = 0;
  int runs = 0;
  const throws_when_copied arg(&copies);
  auto count = [&runs](const throws_when_copied&) { ++runs; };
  weakref::finalize first(obj, count, arg);                              // copy 1
  EXPECT_THROW(weakref::finalize(obj, count, arg), std::runtime_error);  // copy 2 throws
  weakref::finalize third(obj, count, arg);                              // copy 3
  EXPECT_EQ(copies, 3);
  EXPECT_EQ(weakref::getweakrefcount(obj), 2u);
  obj.reset();
  EXPECT_EQ(runs, 2);
  EXPECT_FALSE(first.alive());
  EXPECT_FALSE(third.alive());
  EXPECT_TRUE(hook.entries.empty());
}
