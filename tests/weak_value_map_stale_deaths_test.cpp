// Tests for deaths a weakref::weak_value_map hears of late: a reassigned key survives the death
// of its old value (bpo-28427), callbacks of a dying value see the map as CPython's do (#45,
// registered before or after the insertion), and find() agrees with get() during a death.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "support/tracked.hpp"
#include "support/weak_value_map_helpers.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_value_map.hpp"

namespace {

using testing::ElementsAre;
using weak_value_map_helpers::tmap;
using weak_value_map_helpers::weak_value_map;
using weakref::getweakrefcount;

// bpo-28427: the old value's death must not remove the entry that now maps to a new value.
TEST_F(weak_value_map, reassigned_key_survives_the_death_of_its_old_value) {
  tmap m;
  auto o1 = make("o1"), o2 = make("o2");
  m.insert_or_assign("k", o1);
  EXPECT_FALSE(m.insert_or_assign("k", o2).second);
  o1.reset();
  EXPECT_THAT(log.events, ElementsAre("~o1"));
  EXPECT_TRUE(m.contains("k"));
  EXPECT_EQ(m.get("k"), o2);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(getweakrefcount(o2), 1u);
}

// The stale death arrives after the reassignment (Python: True, True, 1).
TEST_F(weak_value_map, value_reassigned_inside_the_old_values_callback_stays) {
  tmap m;
  auto o1 = make("o1"), o2 = make("o2");
  m.insert_or_assign("k", o1);
  weakref::ref<tracked> r(o1, [&] { m.insert_or_assign("k", o2); });
  o1.reset();
  EXPECT_TRUE(m.contains("k"));
  EXPECT_EQ(m.get("k"), o2);
  EXPECT_EQ(m.size(), 1u);
}

// CPython #45: a callback registered after the insertion runs before the map's own weak
// reference, so the map still counts the dead entry but does not yield it (len 2, list 1).
TEST_F(weak_value_map, callback_registered_after_insertion_sees_the_dead_entry_counted) {
  tmap m;
  auto v1 = make("v1"), v2 = make("v2");
  m.insert_or_assign("a", v1);
  m.insert_or_assign("b", v2);
  std::vector<std::string> seen;
  std::size_t size = 0;
  bool contains = true;
  weakref::ref<tracked> r(v1, [&] {
    size = m.size();
    contains = m.contains("a");
    for (const auto& [key, value] : m) seen.push_back(key);
  });
  v1.reset();
  EXPECT_EQ(size, 2u);
  EXPECT_FALSE(contains);
  EXPECT_THAT(seen, ElementsAre("b"));
  EXPECT_EQ(m.size(), 1u);
}

// The other half of #45: registered before the insertion, it runs after (len 1, list 1).
TEST_F(weak_value_map, callback_registered_before_insertion_sees_the_entry_gone) {
  tmap m;
  auto v1 = make("v1"), v2 = make("v2");
  std::vector<std::string> seen;
  std::size_t size = 0;
  weakref::ref<tracked> r(v1, [&] {
    size = m.size();
    for (const auto& [key, value] : m) seen.push_back(key);
  });
  m.insert_or_assign("a", v1);
  m.insert_or_assign("b", v2);
  v1.reset();
  EXPECT_EQ(size, 1u);
  EXPECT_THAT(seen, ElementsAre("b"));
}

// find() must agree with get()/contains(): a key whose value is dead is not found, even while
// the map has not yet heard of the death (here: inside an earlier callback of that value).
TEST_F(weak_value_map, find_of_a_key_whose_value_is_dying_returns_end) {
  tmap m;
  auto v1 = make("v1"), v2 = make("v2");
  m.insert_or_assign("a", v1);
  m.insert_or_assign("b", v2);
  std::string found = "<not called>";
  weakref::ref<tracked> r(v1, [&] {
    auto it = m.find("a");
    found = it == m.end() ? "end" : it->first;
  });
  v1.reset();
  EXPECT_EQ(found, "end");
}

}  // namespace
