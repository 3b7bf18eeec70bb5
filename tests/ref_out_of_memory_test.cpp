// Tests for weakref/ref.hpp when memory is exhausted (operator new is replaced to fail on
// demand): getweakrefs either succeeds or throws std::bad_alloc having taken no handle, so
// the counts stay right and a ref dropped afterwards is really gone (its callback never runs).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "support/failing_new.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/proxy.hpp"
#include "weakref/ref.hpp"

namespace {

TEST(ref_out_of_memory, a_failed_getweakrefs_takes_no_handle) {
  int failures = 0;
  int successes = 0;
  for (long budget = 0; budget < 4; ++budget) {
    auto obj = weakref::make_shared<int>(0);
    int callbacks = 0;
    weakref::ref<int> canonical(obj);
    weakref::proxy<int> proxy(obj);
    auto with_callback = std::make_unique<weakref::ref<int>>(obj, [&callbacks] { ++callbacks; });
    allocations_before_failure = budget;
    std::vector<weakref::ref<int>> all;
    bool threw = false;
    try {
      all = weakref::getweakrefs(obj);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    allocations_before_failure = -1;
    if (threw) {
      ++failures;
    } else {
      ++successes;
      ASSERT_EQ(all.size(), 3u) << "budget " << budget;
      all.clear();
    }
    ASSERT_EQ(weakref::getweakrefcount(obj), 3u) << "budget " << budget;
    with_callback.reset();  // its last handle: the callback is cancelled
    ASSERT_EQ(weakref::getweakrefcount(obj), 2u) << "budget " << budget;
    obj.reset();
    ASSERT_EQ(callbacks, 0) << "budget " << budget;
  }
  EXPECT_EQ(failures, 2);  // the room for the handles, then the room for the refs
  EXPECT_EQ(successes, 2);
}

}  // namespace
