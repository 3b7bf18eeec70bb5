// Tests for weakref/unraisable.hpp when memory is exhausted: report_unraisable is noexcept, so
// neither the first use of the hook slot nor the default hook may allocate (a bad_alloc there
// would be std::terminate). operator new is replaced to fail on demand.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "support/failing_new.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/unraisable.hpp"

namespace {

// Thrown without allocating (std::runtime_error copies its message with operator new).
struct boom : std::exception {
  const char* what() const noexcept override { return "boom"; }
};

struct widget {};

// An object whose only callback throws `boom`, then its death while operator new fails.
void die_with_throwing_callback_out_of_memory() {
  auto obj = weakref::make_shared<widget>();
  weakref::ref<widget> r(obj, [] { throw boom(); });
  allocations_before_failure = 0;
  obj.reset();
  allocations_before_failure = -1;
}

// The first report of the process comes while operator new fails: the hook slot is created
// then, and the default hook prints. "threadsafe": the child re-executes this test alone, so
// nothing has touched the slot before.
TEST(unraisable_out_of_memory, the_first_report_creates_the_hook_slot_without_allocating) {
  const std::string style = GTEST_FLAG_GET(death_test_style);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        die_with_throwing_callback_out_of_memory();
        std::exit(0);
      },
      testing::ExitedWithCode(0), "weakref: exception ignored in weakref callback: boom\n");
  GTEST_FLAG_SET(death_test_style, style);
}

TEST(unraisable_out_of_memory, the_default_hook_prints_without_allocating) {
  weakref::set_unraisable_hook({});  // the slot exists; the default hook
  testing::internal::CaptureStderr();
  die_with_throwing_callback_out_of_memory();
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "weakref: exception ignored in weakref callback: boom\n");
}

// A bad_alloc thrown by a callback is reported like any exception.
TEST(unraisable_out_of_memory, a_callback_that_cannot_allocate_is_reported) {
  weakref::set_unraisable_hook({});
  auto obj = weakref::make_shared<widget>();
  weakref::ref<widget> r(obj, [] { (void)std::make_unique<std::string>("needs memory"); });
  testing::internal::CaptureStderr();
  allocations_before_failure = 0;
  obj.reset();
  allocations_before_failure = -1;
  auto printed = testing::internal::GetCapturedStderr();
  EXPECT_EQ(printed.rfind("weakref: exception ignored in weakref callback: ", 0), 0u) << printed;
  EXPECT_NE(printed.find("alloc"), std::string::npos) << printed;
}

// A line longer than the default hook's buffer is printed whole, in pieces.
TEST(unraisable_out_of_memory, a_long_message_is_printed_whole) {
  weakref::set_unraisable_hook({});
  static const std::string long_what(2000, 'x');
  struct long_error : std::exception {
    const char* what() const noexcept override { return long_what.c_str(); }
  };
  auto obj = weakref::make_shared<widget>();
  weakref::ref<widget> r(obj, [] { throw long_error(); });
  testing::internal::CaptureStderr();
  allocations_before_failure = 0;
  obj.reset();
  allocations_before_failure = -1;
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "weakref: exception ignored in weakref callback: " + long_what + "\n");
}

}  // namespace
