// Tests for weakref::finalize when memory is exhausted (operator new is replaced to fail on
// demand): a constructor that fails leaves nothing behind (no weak reference counted, nothing
// run or reported at the death), and the exit run, which is noexcept, allocates nothing.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "support/failing_new.hpp"
#include "support/unraisable_log.hpp"
#include "weakref/finalize.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"

namespace {

// The constructor makes one allocation (one block: the node, the state, the function and its
// arguments); registering, and the sweeps some registrations make, allocate nothing. When the
// allocation fails the constructor throws bad_alloc and leaves nothing: the weak reference
// count is as before, and the object's death runs nothing.
TEST(finalize_out_of_memory, a_constructor_that_fails_leaves_nothing_behind) {
  unraisable_log unraisable;
  int failures = 0;
  int runs = 0;
  std::vector<weakref::finalize> kept;
  kept.reserve(1000);
  for (long budget = 0; budget < 2; ++budget) {
    for (int i = 0; i < 300; ++i) {
      auto obj = weakref::make_shared<int>(i);
      weakref::ref<int> canonical(obj);
      allocations_before_failure = budget;
      bool threw = false;
      try {
        kept.emplace_back(obj, [&runs] { ++runs; });
      } catch (const std::bad_alloc&) {
        threw = true;
      }
      allocations_before_failure = -1;
      if (!threw) {
        ASSERT_EQ(weakref::getweakrefcount(obj), 2u);
        kept.back().detach();
        continue;
      }
      ++failures;
      ASSERT_EQ(weakref::getweakrefcount(obj), 1u) << "budget " << budget << ", creation " << i;
      obj.reset();
      ASSERT_EQ(runs, 0) << "budget " << budget << ", creation " << i;
    }
  }
  EXPECT_EQ(failures, 300);  // budget 0 always fails; budget 1 never does
  EXPECT_TRUE(unraisable.entries.empty());
}

// The exit run allocates nothing: with operator new failing it still runs every pending
// finalizer, newest first, including one created by another finalizer while it runs
// (CPython's rescan). In a child process: after an exit run, no finalizer runs any more.
TEST(finalize_out_of_memory, the_exit_run_allocates_nothing) {
  const std::string style = GTEST_FLAG_GET(death_test_style);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static std::vector<std::shared_ptr<int>> objects;
        for (int i = 0; i < 100; ++i) objects.push_back(weakref::make_shared<int>(i));
        static weakref::finalize late;
        for (int i = 0; i < 100; ++i) {
          weakref::finalize(objects[static_cast<std::size_t>(i)], [i] {
            if (i == 50) {  // the only allocation, made with operator new working again
              allocations_before_failure = -1;
              late = weakref::finalize(objects[0], [] { std::fputs("late ", stderr); });
              allocations_before_failure = 0;
            }
            if (i % 25 == 0) std::fprintf(stderr, "%d ", i);
          });
        }
        allocations_before_failure = 0;
        weakref::detail::finalizer_registry::instance().run_at_exit();
        allocations_before_failure = -1;
        std::fputs("done\n", stderr);
        std::exit(0);
      },
      testing::ExitedWithCode(0), "^75 50 late 25 0 done\n$");
  GTEST_FLAG_SET(death_test_style, style);
}

}  // namespace
