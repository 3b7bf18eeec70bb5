// Tests for weakref::weak_set: the std-style and Python-style members, identity (equal values,
// base-class and aliasing pointers), insertion order, members leaving on death, update and the
// range constructors, and non-weakrefable pointers.
// Also: weak_set_iteration_test.cpp, weak_set_algebra_test.cpp, weak_set_lifetime_test.cpp.
#include "weakref/weak_set.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/multiple_bases.hpp"
#include "support/tracked.hpp"
#include "support/weak_set_helpers.hpp"
#include "weakref/ref.hpp"

namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using weak_set_helpers::make;
using weak_set_helpers::names;
using weakref::getweakrefcount;
using weakref::weak_set;

using multiple_bases::base_b;
using multiple_bases::derived;

TEST(weak_set, insert_adds_once_and_returns_the_members_position) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  weak_set<tracked> s;
  auto [it, added] = s.insert(a);
  EXPECT_TRUE(added);
  EXPECT_EQ(*it, a);
  auto [again, added_again] = s.insert(a);
  EXPECT_FALSE(added_again);
  EXPECT_EQ(*again, a);
  s.add(b);
  s.add(b);
  EXPECT_EQ(s.size(), 2u);
  EXPECT_FALSE(s.empty());
  EXPECT_THAT(names(s), ElementsAre("a", "b"));
}

TEST(weak_set, contains_count_and_find_look_up_members) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  weak_set<tracked> s{a};
  EXPECT_TRUE(s.contains(a));
  EXPECT_FALSE(s.contains(b));
  EXPECT_EQ(s.count(a), 1u);
  EXPECT_EQ(s.count(b), 0u);
  ASSERT_NE(s.find(a), s.end());
  EXPECT_EQ(*s.find(a), a);
  EXPECT_EQ(s.find(b), s.end());
}

// C++20's uniform erasure: erase_if (found by argument-dependent lookup) removes the members
// for which the predicate holds, dead ones are not passed, and returns how many it removed.
TEST(weak_set, erase_if_removes_the_members_a_predicate_selects) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c"), d = make(log, "d");
  weak_set<tracked> s{a, b, c, d};
  c.reset();
  std::vector<std::string> passed;
  auto removed = erase_if(s, [&](const std::shared_ptr<tracked>& t) {
    passed.push_back(t->name());
    return t->name() != "b";
  });
  EXPECT_EQ(removed, 2u);
  EXPECT_THAT(passed, ElementsAre("a", "b", "d"));
  EXPECT_THAT(names(s), ElementsAre("b"));
  EXPECT_EQ(erase_if(s, [](const auto&) { return false; }), 0u);
}

TEST(weak_set, equal_valued_objects_are_distinct_members) {
  auto x = weakref::make_shared<int>(5), y = weakref::make_shared<int>(5);
  weak_set<int> s{x, y};
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.erase(y), 1u);
  EXPECT_TRUE(s.contains(x));
  EXPECT_FALSE(s.contains(y));
}

TEST(weak_set, base_class_and_aliasing_pointers_of_one_object_are_one_member) {
  auto d = weakref::make_shared<derived>();
  weak_set<base_b> bases;
  EXPECT_TRUE(bases.insert(std::shared_ptr<base_b>(d)).second);
  EXPECT_FALSE(bases.insert(std::shared_ptr<base_b>(d)).second);
  EXPECT_EQ(bases.begin()->get(), static_cast<base_b*>(d.get()));  // the adjusted pointer

  struct two_ints {
    int first = 1, second = 2;
  };
  auto owner = weakref::make_shared<two_ints>();
  std::shared_ptr<int> first(owner, &owner->first), second(owner, &owner->second);
  weak_set<int> ints{first};
  auto [it, added] = ints.insert(second);
  EXPECT_FALSE(added);
  EXPECT_EQ(it->get(), &owner->first);  // the member keeps the pointer it was inserted with
  EXPECT_TRUE(ints.contains(second));
  EXPECT_EQ(ints.erase(second), 1u);
  EXPECT_TRUE(ints.empty());
}

TEST(weak_set, erase_discard_and_remove) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  weak_set<tracked> s{a, b, c};
  EXPECT_EQ(s.erase(b), 1u);
  EXPECT_EQ(s.erase(b), 0u);
  s.discard(c);
  s.discard(c);
  EXPECT_THROW(s.remove(b), std::out_of_range);  // Python: KeyError
  EXPECT_THAT(names(s), ElementsAre("a"));
  s.remove(a);
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(log.events.empty());  // leaving the set never kills the object
}

TEST(weak_set, pop_removes_the_newest_live_member_and_throws_when_empty) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  weak_set<tracked> s{a, b, c};
  c.reset();  // the newest is dead: pop skips it
  auto popped = s.pop();
  EXPECT_EQ(popped, b);
  EXPECT_EQ(getweakrefcount(popped), 0u);
  EXPECT_EQ(s.pop(), a);
  EXPECT_THROW(s.pop(), std::out_of_range);  // Python: KeyError('pop from empty WeakSet')
  EXPECT_EQ(s.size(), 0u);
}

TEST(weak_set, clear_empties_the_set_and_releases_its_weak_references) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  weak_set<tracked> s{a, b};
  s.clear();
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.begin(), s.end());
  EXPECT_EQ(getweakrefcount(a), 0u);
  s.insert(b);
  s.insert(a);
  EXPECT_THAT(names(s), ElementsAre("b", "a"));
  EXPECT_TRUE(log.events.empty());
}

TEST(weak_set, iterates_in_insertion_order_and_reinsertion_moves_to_the_end) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  weak_set<tracked> s;
  for (const auto& p : {c, a, b}) s.insert(p);
  EXPECT_THAT(names(s), ElementsAre("c", "a", "b"));
  s.insert(c);  // already present: keeps its place
  s.erase(a);
  s.insert(a);
  EXPECT_THAT(names(s), ElementsAre("c", "b", "a"));
}

TEST(weak_set, members_leave_on_death_and_order_survives_compaction) {
  event_log log;
  std::vector<std::shared_ptr<tracked>> owners;
  weak_set<tracked> s;
  for (int i = 0; i < 40; ++i) s.insert(owners.emplace_back(make(log, std::to_string(i))));
  owners[1].reset();
  EXPECT_THAT(log.events, ElementsAre("~1"));
  EXPECT_EQ(s.size(), 39u);
  for (std::size_t i = 2; i < owners.size(); ++i) {
    if (i % 4 != 0) owners[i].reset();  // enough tombstones to compact
  }
  EXPECT_EQ(s.size(), 10u);
  EXPECT_THAT(names(s), ElementsAre("0", "4", "8", "12", "16", "20", "24", "28", "32", "36"));
  owners[8].reset();  // a death after compaction still finds its entry
  owners[36].reset();
  s.insert(owners[1] = make(log, "new"));
  EXPECT_THAT(names(s), ElementsAre("0", "4", "12", "16", "20", "24", "28", "32", "new"));
  EXPECT_EQ(s.size(), 9u);
}

TEST(weak_set, update_and_constructors_take_ranges_of_shared_ptrs) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c"), d = make(log, "d");
  std::vector<std::shared_ptr<tracked>> v{b, a, b, c};
  weak_set<tracked> s{a};
  s.update(v);
  EXPECT_THAT(names(s), ElementsAre("a", "b", "c"));
  s.update({d, a});
  EXPECT_THAT(names(s), ElementsAre("a", "b", "c", "d"));
  weak_set<tracked> from_range(v.begin(), v.end()), other{d};
  EXPECT_THAT(names(from_range), ElementsAre("b", "a", "c"));
  other.update(from_range);
  EXPECT_THAT(names(other), ElementsAre("d", "b", "a", "c"));
}

TEST(weak_set, inserting_a_non_weakrefable_or_empty_pointer_throws_type_error) {
  event_log log;
  auto a = make(log, "a");
  auto plain = std::make_shared<tracked>(log, "plain");
  weak_set<tracked> s{a};
  try {
    s.insert(plain);
    ADD_FAILURE() << "no type_error";
  } catch (const weakref::type_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("was not created by weakref::make_shared"));
  }
  try {
    s.add(nullptr);
    ADD_FAILURE() << "no type_error";
  } catch (const weakref::type_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("is empty"));
  }
  std::vector<std::shared_ptr<tracked>> mixed{plain};
  EXPECT_THROW(s.update(mixed), std::invalid_argument);
  EXPECT_THAT(names(s), ElementsAre("a"));
}

TEST(weak_set, looking_up_a_non_weakrefable_pointer_finds_nothing_without_throwing) {
  event_log log;
  auto a = make(log, "a");
  auto plain = std::make_shared<tracked>(log, "plain");
  std::shared_ptr<tracked> empty;
  weak_set<tracked> s{a};
  static_assert(noexcept(s.contains(plain))&& noexcept(s.erase(plain)));
  EXPECT_FALSE(s.contains(plain));
  EXPECT_FALSE(s.contains(empty));
  EXPECT_EQ(s.count(plain), 0u);
  EXPECT_EQ(s.find(plain), s.end());
  EXPECT_EQ(s.erase(plain), 0u);
  s.discard(empty);
  EXPECT_THROW(s.remove(plain), std::out_of_range);  // Python: TypeError (docs/python-differences)
  EXPECT_THAT(names(s), ElementsAre("a"));
}

}  // namespace
