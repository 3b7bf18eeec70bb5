// Tests for iterating a weakref::weak_key_map: values are modifiable through the loop, the key
// in hand stays alive until the next step, keys dying or erased in the body are skipped, and the
// next key is taken before the current one is let go (as CPython does).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "support/weak_key_map_helpers.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/weak_key_map.hpp"

namespace {

using testing::ElementsAre;
using weak_key_map_helpers::make;
using weak_key_map_helpers::widget;
using weak_key_map_helpers::wmap;

TEST(weak_key_map, values_are_modifiable_through_iteration) {
  wmap m;
  auto a = make(1), b = make(2);
  m[a] = 10;
  m[b] = 20;
  for (auto& [key, value] : m) {
    static_assert(std::is_same_v<decltype(value), int&>);
    value += 1;
  }
  for (const auto& [key, value] : m) value += key->id * 100;  // V& even through const auto&
  EXPECT_EQ(m.at(a), 111);
  EXPECT_EQ(m.at(b), 221);
}

TEST(weak_key_map, iteration_holds_the_key_in_hand_and_skips_keys_dying_in_the_body) {
  wmap m;
  std::vector<std::shared_ptr<widget>> keys;
  for (int i = 0; i < 4; ++i) {
    keys.push_back(make(i));
    m[keys.back()] = i;
  }
  std::weak_ptr<widget> watch = keys[1];
  std::vector<int> seen;
  for (const auto& [key, value] : m) {
    seen.push_back(value);
    if (value == 1) {
      keys[1].reset();  // the key in hand: alive until the step
      keys[2].reset();  // another key: not yielded
      EXPECT_FALSE(watch.expired());
      EXPECT_EQ(key->id, 1);
      EXPECT_EQ(m.size(), 3u);
    }
    if (value == 3) {
      EXPECT_TRUE(watch.expired());
    }
  }
  EXPECT_THAT(seen, ElementsAre(0, 1, 3));
  EXPECT_EQ(m.size(), 2u);
}

}  // namespace

TEST(weak_key_map, erasing_during_iteration_keeps_the_loops_value_until_the_loop_ends) {
  weakref::weak_key_map<widget, std::string> m;
  auto a = make(1), b = make(2);
  m[a] = "a-value";
  m[b] = "b-value";
  std::vector<std::string> seen;
  for (auto& [key, value] : m) {
    m.erase(a);
    m.erase(b);
    seen.push_back(value);  // the erased entry's value is still there (ASan checks)
  }
  EXPECT_THAT(seen, ElementsAre("a-value"));
  EXPECT_TRUE(m.empty());
}

// A key that owns the next key: letting go of it first would kill the next one (CPython yields
// both; found by tools/difftest).
TEST(weak_key_map, iteration_takes_the_next_key_before_letting_go_of_the_current_one) {
  struct node {
    std::shared_ptr<node> child;
  };
  weakref::weak_key_map<node, int> m;
  auto parent = weakref::make_shared<node>();
  parent->child = weakref::make_shared<node>();
  m[parent] = 1;
  m[parent->child] = 2;
  std::vector<int> seen;
  for (const auto& [key, value] : m) {
    seen.push_back(value);
    parent.reset();  // the iteration holds the parent, which holds the child
  }
  EXPECT_THAT(seen, ElementsAre(1, 2));
  EXPECT_TRUE(m.empty());
}
