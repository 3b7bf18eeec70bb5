// Tests for iterating a weakref::weak_value_map: the element in hand stays alive through the
// loop body, entries dying meanwhile are not yielded (size stays exact), inserting, erasing and
// reassigning keys while iterating, the key in hand outliving its entry, and CPython's order of
// taking the next item before letting go of the current one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/tracked.hpp"
#include "support/weak_value_map_helpers.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_value_map.hpp"

namespace {

using testing::ElementsAre;
using weak_value_map_helpers::tmap;
using weak_value_map_helpers::weak_value_map;
using weakref::getweakrefcount;

TEST_F(weak_value_map, iteration_keeps_the_element_in_hand_alive_through_the_loop_body) {
  tmap m;
  auto a = make("a"), b = make("b"), c = make("c");
  m.insert_or_assign("a", a);
  m.insert_or_assign("b", b);
  m.insert_or_assign("c", c);
  std::vector<std::string> seen;
  for (const auto& [key, value] : m) {
    if (key == "b") {
      b.reset();  // the only outside owner
      EXPECT_THAT(log.snapshot(), ElementsAre());
      EXPECT_EQ(value->name(), "b");  // still usable
    }
    if (key == "c") {
      EXPECT_THAT(log.snapshot(), ElementsAre("~b"));  // gone after the step
    }
    seen.push_back(key + "=" + value->name());
  }
  EXPECT_THAT(seen, ElementsAre("a=a", "b=b", "c=c"));
  auto it = m.find("c");  // the last element: the step to end() releases it too
  c.reset();
  EXPECT_EQ(it->second->name(), "c");
  EXPECT_THAT(log.events, ElementsAre("~b"));
  ++it;
  EXPECT_EQ(it, m.end());
  EXPECT_THAT(log.events, ElementsAre("~b", "~c"));
  EXPECT_THAT(m.keys(), ElementsAre("a"));
}

// Python (without len() in the loop, see CPython quirk #7): seen ['0', '1', '3'], len 3.
TEST_F(weak_value_map, entries_dying_during_iteration_are_not_yielded_and_size_is_exact) {
  tmap m;
  std::vector<std::shared_ptr<tracked>> objs;
  for (int i = 0; i < 4; ++i) {
    objs.push_back(make(std::to_string(i)));
    m.insert_or_assign(std::to_string(i), objs.back());
  }
  std::vector<std::string> seen;
  std::size_t size_in_loop = 0;
  for (const auto& [key, value] : m) {
    seen.push_back(key);
    if (key == "0") {
      objs[2].reset();
      size_in_loop = m.size();
    }
  }
  EXPECT_THAT(seen, ElementsAre("0", "1", "3"));
  EXPECT_EQ(size_in_loop, 3u);
  EXPECT_EQ(m.size(), 3u);
  EXPECT_THAT(m.keys(), ElementsAre("0", "1", "3"));
}

TEST_F(weak_value_map, inserting_during_iteration_never_yields_an_entry_twice) {
  tmap m;
  std::vector<std::shared_ptr<tracked>> keep;
  for (const char* name : {"a", "b", "c"}) {
    keep.push_back(make(name));
    m.insert_or_assign(name, keep.back());
  }
  std::map<std::string, int> visits;
  for (const auto& [key, value] : m) {
    ++visits[key];
    if (key == "a") {  // enough to grow the index and the entry storage
      for (int i = 0; i < 100; ++i) {
        keep.push_back(make("n" + std::to_string(i)));
        m.insert_or_assign("n" + std::to_string(i), keep.back());
      }
      keep.push_back(make("c2"));
      m.insert_or_assign("c", keep.back());  // an existing key, not yet visited
    }
  }
  EXPECT_EQ(visits["a"], 1);
  EXPECT_EQ(visits["b"], 1);
  EXPECT_EQ(visits["c"], 1);
  for (const auto& [key, count] : visits) EXPECT_LE(count, 1) << key;
  EXPECT_EQ(m.size(), 103u);
  EXPECT_EQ(m.get("c"), keep.back());
}

TEST_F(weak_value_map, erase_iterator_during_iteration_removes_exactly_that_entry) {
  tmap m;
  std::vector<std::shared_ptr<tracked>> objs;
  for (int i = 0; i < 6; ++i) {
    objs.push_back(make(std::to_string(i)));
    m.insert_or_assign(std::to_string(i), objs.back());
  }
  std::vector<std::string> visited;
  for (auto it = m.begin(); it != m.end();) {
    visited.push_back(it->first);
    if (std::stoi(it->first) % 2 == 0) {
      it = m.erase(it);
    } else {
      ++it;
    }
  }
  EXPECT_THAT(visited, ElementsAre("0", "1", "2", "3", "4", "5"));
  EXPECT_THAT(m.keys(), ElementsAre("1", "3", "5"));
  EXPECT_EQ(getweakrefcount(objs[0]), 0u);
  EXPECT_EQ(getweakrefcount(objs[1]), 1u);
  EXPECT_EQ(m.erase(m.find("5")), m.end());
  EXPECT_THAT(m.keys(), ElementsAre("1", "3"));
}

// Keys compared by the string they point to; the map's entry holds the only owner of its key.
struct deref_hash {
  std::size_t operator()(const std::shared_ptr<const std::string>& p) const {
    return std::hash<std::string>()(*p);
  }
};
struct deref_equal {
  bool operator()(const std::shared_ptr<const std::string>& a,
                  const std::shared_ptr<const std::string>& b) const {
    return *a == *b;
  }
};

// The key in hand is a reference into the entry. Assigning the current key a value that dies
// at once makes the entry go at the next call (the user erased nothing, and insert_or_assign
// keeps references valid): the key object in hand must not be destroyed under the loop body.
TEST_F(weak_value_map, key_in_hand_survives_its_entry_going_during_the_loop_body) {
  weakref::weak_value_map<std::shared_ptr<const std::string>, tracked, deref_hash, deref_equal> m;
  auto a = make("a");
  auto name = std::make_shared<const std::string>("k");
  std::weak_ptr<const std::string> watch = name;
  m.insert_or_assign(std::move(name), a);
  int visits = 0;
  for (const auto& [key, value] : m) {
    ++visits;
    m.insert_or_assign(key, make("temporary"));
    EXPECT_EQ(m.size(), 0u);
    EXPECT_FALSE(watch.expired()) << "the key object in hand was destroyed";
    if (!watch.expired()) {
      EXPECT_EQ(*key, "k");
    }
  }
  EXPECT_EQ(visits, 1);
}

// insert_or_assign keeps iterators valid (std rule); if the new value then dies, the entry goes
// by itself, and erasing through the old iterator must not crash or hang. Run in a child
// process with an alarm, since the failure mode is an endless loop.
TEST(weak_value_map_death_test, erasing_an_iterator_whose_entry_died_is_harmless) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        alarm(3);
        event_log log;
        tmap m;
        auto a = weakref::make_shared<tracked>(log, "a");
        auto b = weakref::make_shared<tracked>(log, "b");
        m.insert_or_assign("a", a);
        m.insert_or_assign("b", b);
        auto it = m.find("a");
        m.insert_or_assign("a", weakref::make_shared<tracked>(log, "temporary"));
        bool ok = m.size() == 1;  // the map has applied the death
        auto next = m.erase(it);
        ok = ok && m.size() == 1 && next != m.end() && next->first == "b";
        std::_Exit(ok ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

}  // namespace

// Reassigning the key in hand replaces its entry's weak reference; the loop's key reference must
// stay valid (the old entry's key lives until the loop ends), and the new value is in place.
TEST_F(weak_value_map, reassigning_the_current_key_during_iteration_keeps_the_loops_key_valid) {
  weakref::weak_value_map<std::string, tracked> m;
  auto a = make("a"), b = make("b");
  auto a2 = make("a2"), b2 = make("b2");
  m.insert_or_assign(std::string(40, 'a'), a);  // long keys: a moved-from key would be empty
  m.insert_or_assign(std::string(40, 'b'), b);
  std::vector<std::string> seen;
  for (const auto& [key, value] : m) {
    m.insert_or_assign(key, key[0] == 'a' ? a2 : b2);
    seen.push_back(key.substr(0, 3) + ":" + value->name());
  }
  EXPECT_THAT(seen, ElementsAre("aaa:a", "bbb:b"));
  EXPECT_EQ(m.get(std::string(40, 'a')), a2);
  EXPECT_EQ(m.get(std::string(40, 'b')), b2);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(getweakrefcount(a), 0u);  // the replaced entries' weak references are gone
}

// CPython's iteration takes the next item before it lets go of the one in hand, so an object
// whose only owner is the iteration is still yielded under its next key (found by
// tools/difftest).
TEST_F(weak_value_map, iteration_takes_the_next_value_before_letting_go_of_the_current_one) {
  weakref::weak_value_map<std::string, tracked> m;
  auto c = make("c");
  m.insert_or_assign("k1", c);
  m.insert_or_assign("k2", c);
  std::vector<std::string> seen;
  for (const auto& [key, value] : m) {
    seen.push_back(key + ":" + value->name());
    c.reset();  // the iteration holds the last reference
  }
  EXPECT_THAT(seen, ElementsAre("k1:c", "k2:c"));
  EXPECT_THAT(log.events, ElementsAre("~c"));
  EXPECT_TRUE(m.empty());
}

// ... but passing a dead entry lets go of the value in hand, as CPython's `v = wr()` does, so
// a value whose only owner was the iteration is gone by the time a later key names it.
TEST_F(weak_value_map, iteration_lets_go_of_the_current_value_when_it_passes_a_dead_entry) {
  weakref::weak_value_map<std::string, tracked> m;
  auto a = make("a"), d = make("d");
  m.insert_or_assign("k3", a);
  m.insert_or_assign("k2", d);
  m.insert_or_assign("k4", a);
  std::vector<std::string> seen;
  for (const auto& [key, value] : m) {
    seen.push_back(key);
    a.reset();  // the iteration holds the last reference
    d.reset();  // k2 is dead when the iteration passes it
  }
  EXPECT_THAT(seen, ElementsAre("k3"));
  EXPECT_THAT(log.events, ElementsAre("~d", "~a"));
}
