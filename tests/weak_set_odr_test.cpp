// weak_set and weak_key_map in a program of two translation units (support/
// weak_set_odr_second_tu.cpp): namespace-scope objects that the inline templates use must be
// one object program-wide (`inline`), or each TU's instantiations refer to a different entity
// (an ODR violation).
#include <gtest/gtest.h>

#include <memory>

#include "weakref/make_shared.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_set.hpp"

const void* same_object_in_second_tu();
bool second_tu_contains(const weakref::weak_set<int>& s, const std::shared_ptr<int>& p);

namespace {

TEST(weak_set_odr, same_object_is_one_object_in_every_translation_unit) {
  EXPECT_EQ(static_cast<const void*>(&weakref::detail::same_object), same_object_in_second_tu());
}

TEST(weak_set_odr, a_set_filled_in_one_translation_unit_is_searched_in_another) {
  auto a = weakref::make_shared<int>(1);
  auto b = weakref::make_shared<int>(2);
  weakref::weak_set<int> s{a};
  EXPECT_TRUE(second_tu_contains(s, a));
  EXPECT_FALSE(second_tu_contains(s, b));
}

}  // namespace
