// Tests for weakref::weak_set lifetimes and bookkeeping: copies are independent, moved-from sets
// are reusable, getweakrefcount counts one per membership, a set destroyed before its members
// lets them go, and a member of many sets leaves them all when it dies.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <utility>

#include "support/tracked.hpp"
#include "support/weak_set_helpers.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_set.hpp"

namespace {

using testing::ElementsAre;
using weak_set_helpers::make;
using weak_set_helpers::names;
using weakref::getweakrefcount;
using weakref::weak_set;

TEST(weak_set, copies_are_independent) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  weak_set<tracked> s{a, b};
  auto copied = s.copy();
  weak_set<tracked> constructed(s), assigned;
  assigned = s;
  copied.insert(c);
  s.erase(a);
  assigned.erase(b);
  EXPECT_THAT(names(s), ElementsAre("b"));
  EXPECT_THAT(names(copied), ElementsAre("a", "b", "c"));
  EXPECT_THAT(names(constructed), ElementsAre("a", "b"));
  EXPECT_THAT(names(assigned), ElementsAre("a"));
  b.reset();
  EXPECT_TRUE(s.empty());
  EXPECT_THAT(names(copied), ElementsAre("a", "c"));
  EXPECT_THAT(names(constructed), ElementsAre("a"));
}

TEST(weak_set, getweakrefcount_counts_one_per_set_membership) {
  event_log log;
  auto a = make(log, "a");
  weak_set<tracked> s1, s2;
  EXPECT_EQ(getweakrefcount(a), 0u);
  s1.insert(a);
  EXPECT_EQ(getweakrefcount(a), 1u);
  s1.insert(a);  // CPython: re-adding a member keeps the count
  EXPECT_EQ(getweakrefcount(a), 1u);
  s2.insert(a);
  EXPECT_EQ(getweakrefcount(a), 2u);
  {
    auto both = s1 | s2;
    EXPECT_EQ(getweakrefcount(a), 3u);
  }
  EXPECT_EQ(getweakrefcount(a), 2u);
  s1.erase(a);
  EXPECT_EQ(getweakrefcount(a), 1u);
  s2.clear();
  EXPECT_EQ(getweakrefcount(a), 0u);
}

TEST(weak_set, set_destroyed_before_its_members_lets_them_go) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  {
    weak_set<tracked> s{a, b};
    auto c = make(log, "c");
    s.insert(c);
    c.reset();  // its death is still waiting in the set's inbox
    EXPECT_EQ(getweakrefcount(a), 1u);
  }
  EXPECT_EQ(getweakrefcount(a), 0u);
  EXPECT_EQ(getweakrefcount(b), 0u);
  a.reset();
  b.reset();
  EXPECT_THAT(log.events, ElementsAre("~c", "~a", "~b"));
}

TEST(weak_set, member_of_many_sets_dies_once_and_leaves_them_all) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  weak_set<tracked> s1{a, b}, s2{b, a}, s3{a};
  EXPECT_EQ(getweakrefcount(a), 3u);
  a.reset();
  EXPECT_THAT(log.events, ElementsAre("~a"));
  EXPECT_THAT(names(s1), ElementsAre("b"));
  EXPECT_THAT(names(s2), ElementsAre("b"));
  EXPECT_TRUE(s3.empty());
  EXPECT_EQ(s3.begin(), s3.end());
}

TEST(weak_set, moved_from_set_is_reusable_and_deaths_follow_the_members) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  weak_set<tracked> s{a, b};
  weak_set<tracked> t(std::move(s));
  s.clear();
  EXPECT_TRUE(s.empty());
  s.insert(c);
  a.reset();
  EXPECT_THAT(names(t), ElementsAre("b"));
  EXPECT_THAT(names(s), ElementsAre("c"));
  t = std::move(s);  // t's old member b is released
  EXPECT_EQ(getweakrefcount(b), 0u);
  c.reset();
  EXPECT_TRUE(t.empty());
}

}  // namespace
