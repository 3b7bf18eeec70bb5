// Tests for the lifetime of iterators, in all three containers. The iterator an insertion
// returns takes its element's strong reference on first use (an unused result costs no
// reference count), holds it from then on like any iterator, and yields a null element if
// every owner let go before that first use. Moving an iterator takes over its element without
// touching counts. Swapping or moving a container carries its iterators along (std's rule);
// assigning over it or destroying it detaches them, and a detached iterator may still be
// incremented (it stays at the end) and destroyed. The containers are std ranges.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/tracked.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_set.hpp"
#include "weakref/weak_value_map.hpp"

namespace {

using testing::ElementsAre;

std::shared_ptr<tracked> make(event_log& log, const std::string& name) {
  return weakref::make_shared<tracked>(log, name);
}

TEST(weak_value_map_insert_iterator, takes_its_value_on_first_use_and_holds_it_from_then_on) {
  event_log log;
  auto a = make(log, "a");
  weakref::weak_value_map<std::string, tracked> m;
  auto [it, added] = m.try_emplace("a", a);
  ASSERT_TRUE(added);
  EXPECT_EQ(a.use_count(), 1);  // nothing taken yet
  EXPECT_EQ(it->first, "a");
  EXPECT_EQ(it->second, a);
  EXPECT_EQ(a.use_count(), 2);
  a.reset();
  EXPECT_THAT(log.events, ElementsAre());  // the iterator holds it now
  EXPECT_EQ(it->second->name(), "a");
  ++it;
  EXPECT_THAT(log.events, ElementsAre("~a"));
  EXPECT_EQ(it, m.end());
  EXPECT_TRUE(m.empty());
}

TEST(weak_value_map_insert_iterator, yields_a_null_value_if_the_element_died_before_first_use) {
  event_log log;
  auto b = make(log, "b");
  weakref::weak_value_map<std::string, tracked> m;
  auto [it, added] = m.insert_or_assign("a", make(log, "a"));  // its only owner is a temporary
  ASSERT_TRUE(added);
  m.insert_or_assign("b", b);
  EXPECT_THAT(log.events, ElementsAre("~a"));
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(it->first, "a");  // the key lives as long as the iterator
  EXPECT_EQ(it->second, nullptr);
  ++it;  // moves on as usual
  EXPECT_EQ(it->second, b);
  EXPECT_EQ(++it, m.end());
  EXPECT_THAT(m.keys(), ElementsAre("b"));
}

TEST(weak_key_map_insert_iterator, takes_its_key_on_first_use_and_null_if_it_died_before) {
  event_log log;
  auto a = make(log, "a");
  weakref::weak_key_map<tracked, int> m;
  auto [it, added] = m.try_emplace(a, 1);
  ASSERT_TRUE(added);
  EXPECT_EQ(a.use_count(), 1);
  EXPECT_EQ(it->first, a);
  EXPECT_EQ(a.use_count(), 2);
  it->second = 2;  // the value is the entry's own
  EXPECT_EQ(m.at(a), 2);

  auto [dead, dead_added] = m.insert_or_assign(make(log, "b"), 3);
  ASSERT_TRUE(dead_added);
  EXPECT_THAT(log.events, ElementsAre("~b"));
  EXPECT_EQ(dead->first, nullptr);
  EXPECT_EQ(dead->second, 3);  // the removed entry's value lives as long as the iterator
  EXPECT_EQ(++dead, m.end());
}

TEST(weak_set_insert_iterator, takes_its_member_on_first_use_and_null_if_it_died_before) {
  event_log log;
  auto a = make(log, "a");
  weakref::weak_set<tracked> s;
  auto [it, added] = s.insert(a);
  ASSERT_TRUE(added);
  EXPECT_EQ(a.use_count(), 1);
  EXPECT_EQ(*it, a);
  EXPECT_EQ(a.use_count(), 2);

  auto [dead, dead_added] = s.insert(make(log, "b"));
  ASSERT_TRUE(dead_added);
  EXPECT_THAT(log.events, ElementsAre("~b"));
  EXPECT_EQ(*dead, nullptr);
  EXPECT_EQ(++dead, s.end());
  EXPECT_EQ(s.size(), 1u);
}

// The iterator an insertion returns registers in a slot of its own, not in the table's list
// of iterators (it is usually dropped at once); kept, it must still hold its entry's position
// through everything a listed iterator survives. 20 erasures before it would compact the
// table's order (holes outnumber live entries), moving the entry to position 0.
template <class C>
class insertion_iterator : public testing::Test {};
using insertion_containers =
    testing::Types<weakref::weak_value_map<int, tracked>, weakref::weak_key_map<tracked, int>,
                   weakref::weak_set<tracked>>;
TYPED_TEST_SUITE(insertion_iterator, insertion_containers);

auto insert_new(weakref::weak_value_map<int, tracked>& c, int i,
                const std::shared_ptr<tracked>& o) {
  return c.try_emplace(i, o).first;
}
auto insert_new(weakref::weak_key_map<tracked, int>& c, int i, const std::shared_ptr<tracked>& o) {
  return c.try_emplace(o, i).first;
}
auto insert_new(weakref::weak_set<tracked>& c, int, const std::shared_ptr<tracked>& o) {
  return c.insert(o).first;
}
void erase_entry(weakref::weak_value_map<int, tracked>& c, int i, const std::shared_ptr<tracked>&) {
  c.erase(i);
}
template <class C>
void erase_entry(C& c, int, const std::shared_ptr<tracked>& o) {
  c.erase(o);
}
// The object of the entry an iterator is at.
const std::shared_ptr<tracked>& object_at(
    const weakref::weak_value_map<int, tracked>::iterator& it) {
  return it->second;
}
const std::shared_ptr<tracked>& object_at(const weakref::weak_key_map<tracked, int>::iterator& it) {
  return it->first;
}
const std::shared_ptr<tracked>& object_at(const weakref::weak_set<tracked>::iterator& it) {
  return *it;
}

// 22 objects "0".."21"; entries 0..19 inserted (their iterators dropped).
template <class C>
std::vector<std::shared_ptr<tracked>> fill_twenty(event_log& log, C& c) {
  std::vector<std::shared_ptr<tracked>> objects;
  objects.reserve(22);
  for (int i = 0; i < 22; ++i) objects.push_back(make(log, std::to_string(i)));
  for (int i = 0; i < 20; ++i) insert_new(c, i, objects[i]);
  return objects;
}
template <class C>
void erase_twenty(C& c, const std::vector<std::shared_ptr<tracked>>& objects) {
  for (int i = 0; i < 20; ++i) erase_entry(c, i, objects[i]);
}

TYPED_TEST(insertion_iterator, kept_unused_it_keeps_its_entrys_position_while_others_go) {
  event_log log;
  TypeParam c;
  auto objects = fill_twenty(log, c);
  auto kept = insert_new(c, 20, objects[20]);
  erase_twenty(c, objects);
  EXPECT_EQ(object_at(kept), objects[20]);
  EXPECT_EQ(c.erase(kept), c.end());  // erases its entry, wherever the order has it
  EXPECT_TRUE(c.empty());
}

TYPED_TEST(insertion_iterator, kept_after_the_next_insertion_or_moved_it_still_holds_its_place) {
  event_log log;
  TypeParam c;
  auto objects = fill_twenty(log, c);
  auto first = insert_new(c, 20, objects[20]);
  auto second_at = insert_new(c, 21, objects[21]);  // the first moves to the table's list
  auto second = std::move(second_at);
  erase_twenty(c, objects);
  EXPECT_EQ(object_at(first), objects[20]);
  EXPECT_EQ(object_at(second), objects[21]);
  EXPECT_EQ(second_at, c.end());  // NOLINT(bugprone-use-after-move): left at the end
  EXPECT_EQ(++first, second);
  EXPECT_EQ(c.erase(second), c.end());
  EXPECT_EQ(object_at(c.begin()), objects[20]);
  EXPECT_EQ(c.size(), 1u);
}

TYPED_TEST(insertion_iterator, follows_its_entry_when_the_container_is_swapped) {
  event_log log;
  TypeParam c, other;
  auto objects = fill_twenty(log, c);
  auto kept = insert_new(c, 20, objects[20]);
  c.swap(other);
  erase_twenty(other, objects);
  EXPECT_EQ(object_at(kept), objects[20]);
  EXPECT_EQ(other.erase(kept), other.end());
  EXPECT_TRUE(other.empty());
}

TYPED_TEST(insertion_iterator, is_detached_when_its_container_is_assigned_over) {
  event_log log;
  TypeParam c;
  auto objects = fill_twenty(log, c);
  auto kept = insert_new(c, 20, objects[20]);
  c = TypeParam();
  EXPECT_EQ(++kept, typename TypeParam::iterator());
  insert_new(c, 21, objects[21]);
  EXPECT_EQ(object_at(c.begin()), objects[21]);
  EXPECT_EQ(c.size(), 1u);
}

TYPED_TEST(insertion_iterator, outlives_its_container_detached) {
  event_log log;
  TypeParam scratch;
  auto objects = fill_twenty(log, scratch);
  typename TypeParam::iterator kept;
  {
    TypeParam c;
    kept = insert_new(c, 20, objects[20]);
    auto moved = insert_new(c, 21, objects[21]);
    kept = std::move(moved);  // the fresh one, moved: the table must still find it to detach it
  }
  EXPECT_EQ(++kept, typename TypeParam::iterator());
}

TEST(weak_containers_iterator, moving_takes_over_the_element_and_leaves_the_end) {
  event_log log;
  auto a = make(log, "a");
  weakref::weak_set<tracked> s{a};
  auto it = s.begin();
  EXPECT_EQ(a.use_count(), 2);
  auto moved = std::move(it);
  EXPECT_EQ(a.use_count(), 2);
  EXPECT_EQ(*moved, a);
  EXPECT_EQ(it, s.end());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  it = std::move(moved);
  EXPECT_EQ(a.use_count(), 2);
  EXPECT_EQ(*it, a);
  EXPECT_EQ(moved, s.end());  // NOLINT(bugprone-use-after-move)
  a.reset();
  EXPECT_THAT(log.events, ElementsAre());
  ++it;
  EXPECT_THAT(log.events, ElementsAre("~a"));
  EXPECT_TRUE(s.empty());
}

TEST(weak_containers_iterator, may_outlive_its_container_and_holds_its_element_until_it_goes) {
  event_log log;
  {
    weakref::weak_value_map<std::string, tracked>::iterator it;
    {
      auto a = make(log, "a");
      weakref::weak_value_map<std::string, tracked> m{{"a", a}};
      it = m.begin();
    }  // the map and the outside owner go; the iterator still holds the value
    EXPECT_THAT(log.events, ElementsAre());
    ++it;  // detached: stays at the end
    EXPECT_EQ(it, decltype(it)());
    EXPECT_THAT(log.events, ElementsAre());
  }
  EXPECT_THAT(log.events, ElementsAre("~a"));
}

TEST(weak_containers_iterator, swapping_containers_carries_the_iteration_along) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c"), d = make(log, "d");
  weakref::weak_set<tracked> s{a, b, c}, t{d};
  auto it = s.begin();
  ASSERT_EQ(*it, a);
  s.swap(t);
  b.reset();  // dies while the iteration is suspended, now in t
  std::vector<std::string> seen;
  for (; it != t.end(); ++it) seen.push_back((*it)->name());
  EXPECT_THAT(seen, ElementsAre("a", "c"));
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_TRUE(s.contains(d));
}

TEST(weak_containers_iterator, moving_a_container_carries_the_iteration_along) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  weakref::weak_key_map<tracked, int> m{{a, 1}, {b, 2}};
  auto it = m.begin();
  auto moved = std::move(m);
  it->second = 10;
  ++it;
  EXPECT_EQ(it->first, b);
  EXPECT_EQ(++it, moved.end());
  EXPECT_EQ(moved.at(a), 10);
}

TEST(weak_containers_iterator, assigning_over_a_container_detaches_its_iterators) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  weakref::weak_set<tracked> s{a, b};
  auto it = s.begin();
  s = weakref::weak_set<tracked>{c};
  ++it;  // detached: ends the loop instead of walking the new contents
  EXPECT_EQ(it, decltype(it)());
  std::vector<std::string> seen;
  for (const auto& member : s) seen.push_back(member->name());
  EXPECT_THAT(seen, ElementsAre("c"));
}

// erase(end()) is a documented no-op returning end() (it returned begin(): a loop
// `it = c.erase(it)` run once too often started over).
TEST(weak_containers_iterator, erase_end_does_nothing_and_returns_end) {
  event_log log;
  auto a = make(log, "a");
  auto b = make(log, "b");
  weakref::weak_value_map<std::string, tracked> vm{{"a", a}, {"b", b}};
  weakref::weak_key_map<tracked, int> km{{a, 1}, {b, 2}};
  weakref::weak_set<tracked> s{a, b};
  EXPECT_TRUE(vm.erase(vm.end()) == vm.end());
  EXPECT_TRUE(km.erase(km.end()) == km.end());
  EXPECT_TRUE(s.erase(s.end()) == s.end());
  EXPECT_TRUE(s.erase(decltype(s)::iterator()) == s.end());  // a default-constructed one too
  EXPECT_EQ(vm.size(), 2u);
  EXPECT_EQ(km.size(), 2u);
  EXPECT_EQ(s.size(), 2u);
  auto it = s.begin();  // the last one's erase returns end(), and erasing that changes nothing
  it = s.erase(it);
  it = s.erase(it);
  EXPECT_TRUE(it == s.end());
  EXPECT_TRUE(s.erase(it) == s.end());
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(vm.size(), 2u);
}

// The iterators model std::input_iterator, so the containers are std::ranges::input_range and
// the ranges algorithms take them; `*it++` yields the entry passed, held by the copy.
// (libc++ 14 has the iterator concepts but not <ranges>' algorithms: __cpp_lib_ranges.)
static_assert(std::input_iterator<weakref::weak_set<tracked>::iterator>);
static_assert(std::input_iterator<weakref::weak_value_map<std::string, tracked>::iterator>);
static_assert(std::input_iterator<weakref::weak_key_map<tracked, int>::iterator>);
#if defined(__cpp_lib_ranges)
static_assert(std::ranges::input_range<weakref::weak_set<tracked>>);
static_assert(std::ranges::input_range<const weakref::weak_set<tracked>>);
static_assert(std::ranges::input_range<weakref::weak_value_map<std::string, tracked>>);
static_assert(std::ranges::input_range<weakref::weak_key_map<tracked, int>>);
#endif

TEST(weak_containers_iterator,
     containers_are_ranges_and_postfix_increment_yields_the_passed_entry) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  weakref::weak_set<tracked> set{a, b, c};
#if defined(__cpp_lib_ranges)
  EXPECT_EQ(std::ranges::count_if(set, [](const auto& t) { return t->name() != "b"; }), 2);
  weakref::weak_value_map<std::string, tracked> map{{"b", b}, {"c", c}};
  std::vector<std::string> keys;
  std::ranges::transform(map, std::back_inserter(keys),
                         [](const auto& item) { return item.first; });
  EXPECT_THAT(keys, ElementsAre("b", "c"));
#endif

  auto it = set.begin();
  auto passed = it++;
  EXPECT_EQ(*passed, a);
  EXPECT_EQ(*it, b);
  a.reset();  // the copy holds the passed element
  EXPECT_THAT(log.events, ElementsAre());
  EXPECT_EQ((*it++)->name(), "b");
  EXPECT_EQ(*it, c);
  passed = set.end();
  EXPECT_THAT(log.events, ElementsAre("~a"));
}

}  // namespace
