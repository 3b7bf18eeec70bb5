// Tests for iterating a weakref::weak_set: the member in hand stays alive until the next step,
// an observer dropping another observer while notified (the observer bug), and inserting or
// erasing (by iterator or by value) while iterating.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "support/tracked.hpp"
#include "support/weak_set_helpers.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_set.hpp"

namespace {

using testing::ElementsAre;
using weak_set_helpers::make;
using weak_set_helpers::names;
using weakref::getweakrefcount;
using weakref::weak_set;

struct observer : tracked {
  using tracked::tracked;
  std::function<void()> on_notify;
  void notify() {
    log().add("notify " + name());
    if (on_notify) on_notify();
  }
};

TEST(weak_set, iteration_keeps_the_current_member_alive_until_the_next_step) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  weak_set<tracked> s{a, b};
  for (const auto& member : s) {
    if (member == a) a.reset();  // the only outside owner
    log.add("body " + member->name());
  }
  EXPECT_THAT(log.events, ElementsAre("body a", "~a", "body b"));
  EXPECT_EQ(s.size(), 1u);
}

TEST(weak_set, observer_dropping_another_observer_while_notified_is_safe) {
  event_log log;
  std::vector<std::shared_ptr<observer>> owners;
  for (const char* name : {"a", "b", "c", "d"}) {
    owners.push_back(weakref::make_shared<observer>(log, name));
  }
  weak_set<observer> subscribers(owners.begin(), owners.end());
  owners[1]->on_notify = [&] { owners[2].reset(); };  // b drops c, not yet notified
  owners[3]->on_notify = [&] { owners[0].reset(); };  // d drops a, already notified
  for (const auto& o : subscribers) o->notify();
  EXPECT_THAT(log.events, ElementsAre("notify a", "notify b", "~c", "notify d", "~a"));
  EXPECT_EQ(subscribers.size(), 2u);
  EXPECT_THAT(names(subscribers), ElementsAre("b", "d"));
}

TEST(weak_set, inserting_during_iteration_is_safe_and_new_members_are_visited) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  std::vector<std::shared_ptr<tracked>> added;
  weak_set<tracked> s{a, b};
  std::vector<std::string> seen;
  for (const auto& member : s) {
    seen.push_back(member->name());
    if (member != a) continue;
    s.insert(b);  // present: no change
    for (int i = 0; i < 40; ++i) s.insert(added.emplace_back(make(log, "n" + std::to_string(i))));
  }
  ASSERT_EQ(seen.size(), 42u);
  EXPECT_EQ(seen[0], "a");
  EXPECT_EQ(seen[1], "b");
  EXPECT_EQ(seen[41], "n39");
  EXPECT_EQ(s.size(), 42u);
}

TEST(weak_set, erase_iterator_in_a_loop_returns_the_next_live_member) {
  event_log log;
  std::vector<std::shared_ptr<tracked>> o;
  for (const char* name : {"a", "b", "c", "d", "e", "f"}) o.push_back(make(log, name));
  weak_set<tracked> s(o.begin(), o.end());
  for (auto it = s.begin(); it != s.end();) {
    auto n = (*it)->name();
    if (n == "b" || n == "c" || n == "e") {
      it = s.erase(it);
    } else {
      ++it;
    }
  }
  EXPECT_THAT(names(s), ElementsAre("a", "d", "f"));
  EXPECT_EQ(getweakrefcount(o[1]), 0u);
  o[3].reset();                       // d dies
  auto next = s.erase(s.find(o[0]));  // skips dead d
  ASSERT_NE(next, s.end());
  EXPECT_EQ(*next, o[5]);
  EXPECT_EQ(s.erase(next), s.end());
  EXPECT_TRUE(s.empty());
}

TEST(weak_set, erasing_by_value_during_iteration_skips_the_erased_members) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c"), d = make(log, "d");
  weak_set<tracked> s{a, b, c, d};
  std::vector<std::string> seen;
  for (const auto& member : s) {
    seen.push_back(member->name());
    if (member == b) {
      s.erase(member);
      s.erase(c);
    }
  }
  EXPECT_THAT(seen, ElementsAre("a", "b", "d"));
  EXPECT_THAT(names(s), ElementsAre("a", "d"));
}

}  // namespace
