// Tests for weakref::weak_value_map: the shared mapping conformance suite, then what is
// specific to it — CPython's WeakValueDictionary semantics for get/at/pop/setdefault/popitem
// (checked against python3 3.11), stale deaths (bpo-28427), valuerefs and getweakrefcount,
// throwing Hash/KeyEqual, and iteration while entries die, are added or are erased.
#include "weakref/weak_value_map.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "support/mapping_conformance.hpp"
#include "support/tracked.hpp"
#include "weakref/ref.hpp"

namespace mapping_conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(value_map, weak_mapping, value_map_adapter);
}  // namespace mapping_conformance

namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using weakref::getweakrefcount;
using tmap = weakref::weak_value_map<std::string, tracked>;

class weak_value_map : public testing::Test {
 protected:
  std::shared_ptr<tracked> make(const std::string& name) {
    return weakref::make_shared<tracked>(log, name);
  }
  event_log log;
};

TEST_F(weak_value_map, get_returns_null_for_absent_or_dead_keys_or_the_fallback) {
  tmap m;
  auto a = make("a"), fallback = make("fallback");
  m.insert_or_assign("a", a);
  EXPECT_EQ(m.get("a"), a);
  EXPECT_EQ(m.get("a", fallback), a);
  EXPECT_EQ(m.get("zz"), nullptr);
  EXPECT_EQ(m.get("zz", fallback), fallback);
  a.reset();  // Python: d.get(k) is None and k not in d once the value died
  EXPECT_EQ(m.get("a"), nullptr);
  EXPECT_EQ(m.get("a", fallback), fallback);
  EXPECT_FALSE(m.contains("a"));
  EXPECT_EQ(m.count("a"), 0u);
  EXPECT_EQ(m.find("a"), m.end());
}

TEST_F(weak_value_map, at_throws_out_of_range_for_absent_or_dead_keys) {
  tmap m;
  auto a = make("a");
  m.insert_or_assign("a", a);
  EXPECT_EQ(m.at("a"), a);
  EXPECT_THROW(m.at("zz"), std::out_of_range);
  a.reset();
  EXPECT_THROW(m.at("a"), std::out_of_range);  // Python: KeyError
}

TEST_F(weak_value_map, setdefault_returns_the_live_value_and_ignores_the_default) {
  tmap m;
  auto a = make("a"), b = make("b");
  m.insert_or_assign("a", a);
  EXPECT_EQ(m.setdefault("a", b), a);
  EXPECT_EQ(m.get("a"), a);
  EXPECT_EQ(getweakrefcount(b), 0u);  // the default was not stored
  EXPECT_EQ(m.setdefault("b", b), b);
  EXPECT_EQ(m.get("b"), b);
  EXPECT_THAT(m.keys(), ElementsAre("a", "b"));
}

// Python: d['a']=x; d['b']=y; del x; d.setdefault('a', z) is z  -> True, keys ['b', 'a']
TEST_F(weak_value_map, setdefault_on_a_key_whose_value_died_stores_the_new_value) {
  tmap m;
  auto x = make("x"), y = make("y"), z = make("z");
  m.insert_or_assign("a", x);
  m.insert_or_assign("b", y);
  x.reset();
  EXPECT_EQ(m.setdefault("a", z), z);
  EXPECT_EQ(m.get("a"), z);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_THAT(m.keys(), ElementsAre("b", "a"));
}

// Python: r = d.setdefault('t', O()) keeps 't' only while r lives.
TEST_F(weak_value_map, setdefault_with_a_temporary_default_keeps_it_only_while_owned) {
  tmap m;
  auto r = m.setdefault("t", make("t"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->name(), "t");
  EXPECT_TRUE(m.contains("t"));
  r.reset();
  EXPECT_THAT(log.events, ElementsAre("~t"));
  EXPECT_FALSE(m.contains("t"));
  EXPECT_EQ(m.size(), 0u);
}

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

TEST_F(weak_value_map, pop_returns_the_live_value_and_removes_its_entry) {
  tmap m;
  auto a = make("a"), b = make("b"), fallback = make("fallback");
  m.insert_or_assign("a", a);
  m.insert_or_assign("b", b);
  EXPECT_EQ(m.pop("a"), a);
  EXPECT_EQ(getweakrefcount(a), 0u);
  EXPECT_THAT(m.keys(), ElementsAre("b"));
  EXPECT_THROW(m.pop("a"), std::out_of_range);  // Python: KeyError('a')
  EXPECT_EQ(m.pop("a", fallback), fallback);
  b.reset();
  EXPECT_THROW(m.pop("b"), std::out_of_range);  // a dead value counts as missing
  EXPECT_EQ(m.pop("b", fallback), fallback);
  EXPECT_EQ(m.pop("b", nullptr), nullptr);
  EXPECT_TRUE(m.empty());
}

// Python: p, q, s inserted; del s; popitem() -> ('q', q); empty -> KeyError.
TEST_F(weak_value_map, popitem_returns_the_newest_live_pair_and_throws_when_empty) {
  tmap m;
  auto p = make("p"), q = make("q"), s = make("s");
  m.insert_or_assign("p", p);
  m.insert_or_assign("q", q);
  m.insert_or_assign("s", s);
  s.reset();
  auto [key, value] = m.popitem();
  EXPECT_EQ(key, "q");
  EXPECT_EQ(value, q);
  p.reset();
  EXPECT_THROW(m.popitem(), std::out_of_range);
  EXPECT_THROW(tmap().popitem(), std::out_of_range);
}

// CPython test_weak_values: one object under two keys counts 2 (one KeyedRef per key).
TEST_F(weak_value_map, valuerefs_share_the_maps_weak_references) {
  tmap m;
  auto o = make("o");
  m.insert_or_assign("a", o);
  m.insert_or_assign("b", o);
  EXPECT_EQ(getweakrefcount(o), 2u);
  auto refs = m.valuerefs();
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(getweakrefcount(o), 2u);  // no new weak reference objects
  EXPECT_EQ(refs[0].lock(), o);
  EXPECT_EQ(refs[1].lock(), o);
  EXPECT_TRUE(refs[0].has_callback());  // Python: KeyedRef.__callback__ is not None
  m.erase("a");
  EXPECT_EQ(getweakrefcount(o), 2u);  // Python: a held KeyedRef still counts
  refs.clear();
  EXPECT_EQ(getweakrefcount(o), 1u);
  refs = m.valuerefs();
  o.reset();
  EXPECT_FALSE(refs[0].alive());
  EXPECT_THAT(m.valuerefs(), ElementsAre());
}

TEST_F(weak_value_map, getweakrefcount_drops_when_an_entry_is_erased_or_the_map_destroyed) {
  auto o = make("o");
  {
    tmap m;
    m.insert_or_assign("a", o);
    m.insert_or_assign("b", o);
    m.insert_or_assign("c", o);
    EXPECT_EQ(getweakrefcount(o), 3u);
    m.erase("a");
    EXPECT_EQ(getweakrefcount(o), 2u);
    m.erase(m.find("b"));
    EXPECT_EQ(getweakrefcount(o), 1u);
  }
  EXPECT_EQ(getweakrefcount(o), 0u);
}

TEST_F(weak_value_map, map_destroyed_before_its_values_leaves_them_working) {
  auto m = std::make_unique<tmap>();
  auto a = make("a"), b = make("b"), c = make("c");
  m->insert_or_assign("a", a);
  m->insert_or_assign("b", b);
  m->insert_or_assign("c", c);
  weakref::ref<tracked> r(a, [&] { log.add("callback"); });
  c.reset();  // a death the map never collects
  m.reset();
  EXPECT_EQ(getweakrefcount(a), 1u);  // only r
  EXPECT_EQ(getweakrefcount(b), 0u);
  a.reset();
  b.reset();
  EXPECT_THAT(log.events, ElementsAre("~c", "callback", "~a", "~b"));
}

// Python: x in m1 under 'k' and in m2 under 'k' and 'j': getweakrefcount 3; del x: 0 and 0.
TEST_F(weak_value_map, a_value_in_several_maps_leaves_each_when_it_dies) {
  tmap m1, m2;
  auto x = make("x"), y = make("y");
  m1.insert_or_assign("k", x);
  m2.insert_or_assign("k", x);
  m2.insert_or_assign("j", x);
  m2.insert_or_assign("y", y);
  EXPECT_EQ(getweakrefcount(x), 3u);
  x.reset();
  EXPECT_EQ(m1.size(), 0u);
  EXPECT_EQ(m2.size(), 1u);
  EXPECT_THAT(m2.keys(), ElementsAre("y"));
}

// Hash and KeyEqual that throw on demand. Keys of equal parity collide, so KeyEqual runs.
struct flaky_hash {
  const bool* fail;
  std::size_t operator()(int key) const {
    if (*fail) throw std::runtime_error("hash failed");
    return static_cast<std::size_t>(key % 2);
  }
};
struct flaky_equal {
  const bool* fail;
  bool operator()(int a, int b) const {
    if (*fail) throw std::runtime_error("equal failed");
    return a == b;
  }
};
using flaky_map = weakref::weak_value_map<int, tracked, flaky_hash, flaky_equal>;

std::vector<std::string> contents(const flaky_map& m) {
  std::vector<std::string> result;
  for (const auto& [key, value] : m) result.push_back(std::to_string(key) + "=" + value->name());
  return result;
}

// Every call that hashes or compares a key; each must throw and change nothing.
void expect_each_keyed_call_throws(flaky_map& m, const std::shared_ptr<tracked>& c) {
  EXPECT_THROW(m.insert_or_assign(3, c), std::runtime_error);
  EXPECT_THROW(m.insert_or_assign(1, c), std::runtime_error);
  EXPECT_THROW(m.try_emplace(3, c), std::runtime_error);
  EXPECT_THROW(m.insert({3, c}), std::runtime_error);
  EXPECT_THROW(m.setdefault(3, c), std::runtime_error);
  EXPECT_THROW(m.get(1), std::runtime_error);
  EXPECT_THROW(m.contains(1), std::runtime_error);
  EXPECT_THROW(m.find(1), std::runtime_error);
  EXPECT_THROW(m.erase(1), std::runtime_error);
  EXPECT_THROW(m.pop(1), std::runtime_error);
  EXPECT_THROW(m.pop(1, c), std::runtime_error);
  EXPECT_THROW(m.at(1), std::runtime_error);
  EXPECT_EQ(m.size(), 2u);
}

void expect_unchanged_and_usable(flaky_map& m, const std::shared_ptr<tracked>& a,
                                 const std::shared_ptr<tracked>& c) {
  EXPECT_THAT(contents(m), ElementsAre("1=a", "2=b"));
  EXPECT_EQ(getweakrefcount(a), 1u);
  EXPECT_EQ(getweakrefcount(c), 0u);  // no entry node was left behind
  EXPECT_TRUE(m.insert_or_assign(3, c).second);
  EXPECT_EQ(m.find(3)->second, c);
  EXPECT_EQ(m.get(1), a);
  EXPECT_EQ(m.erase(1), 1u);
  EXPECT_THAT(contents(m), ElementsAre("2=b", "3=c"));
}

TEST_F(weak_value_map, throwing_hash_leaves_the_map_unchanged_and_usable) {
  bool fail_hash = false, fail_equal = false;
  flaky_map m(flaky_hash{&fail_hash}, flaky_equal{&fail_equal});
  auto a = make("a"), b = make("b"), c = make("c");
  m.insert_or_assign(1, a);
  m.insert_or_assign(2, b);
  fail_hash = true;
  expect_each_keyed_call_throws(m, c);
  fail_hash = false;
  expect_unchanged_and_usable(m, a, c);
}

TEST_F(weak_value_map, throwing_key_equal_leaves_the_map_unchanged_and_usable) {
  bool fail_hash = false, fail_equal = false;
  flaky_map m(flaky_hash{&fail_hash}, flaky_equal{&fail_equal});
  auto a = make("a"), b = make("b"), c = make("c");
  m.insert_or_assign(1, a);
  m.insert_or_assign(2, b);
  fail_equal = true;
  expect_each_keyed_call_throws(m, c);
  fail_equal = false;
  expect_unchanged_and_usable(m, a, c);
}

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

TEST_F(weak_value_map, structured_bindings_work_on_elements_and_results) {
  tmap m;
  auto a = make("a"), b = make("b");
  auto [it, added] = m.insert({"a", a});
  EXPECT_TRUE(added);
  EXPECT_EQ(it->first, "a");
  EXPECT_EQ(it->second, a);
  auto [it2, added2] = m.insert_or_assign("a", b);
  EXPECT_FALSE(added2);
  EXPECT_EQ(it2->second, b);
  for (const auto& [key, value] : m) {
    static_assert(std::is_same_v<decltype(key), const std::string&>);
    static_assert(std::is_same_v<std::remove_cv_t<decltype(value)>, std::shared_ptr<tracked>>);
    EXPECT_EQ(key, "a");
    EXPECT_EQ(value, b);
  }
  auto [key, value] = m.popitem();
  EXPECT_EQ(key, "a");
  EXPECT_EQ(value, b);
}

TEST_F(weak_value_map, inserting_a_value_not_made_by_weakref_make_shared_throws_type_error) {
  tmap m;
  auto a = make("a");
  m.insert_or_assign("a", a);
  auto foreign = std::make_shared<tracked>(log, "foreign");
  auto message = [&](auto&& f) -> std::string {
    try {
      f();
    } catch (const weakref::type_error& e) {
      return e.what();
    }
    return "<no type_error>";
  };
  const auto* not_ours = "was not created by weakref::make_shared";
  EXPECT_THAT(message([&] { m.insert_or_assign("x", foreign); }), HasSubstr(not_ours));
  EXPECT_THAT(message([&] { m.insert_or_assign("a", foreign); }), HasSubstr(not_ours));
  EXPECT_THAT(message([&] { m.try_emplace("x", foreign); }), HasSubstr(not_ours));
  EXPECT_THAT(message([&] { m.insert({"x", foreign}); }), HasSubstr(not_ours));
  EXPECT_THAT(message([&] { m.setdefault("x", foreign); }), HasSubstr(not_ours));
  EXPECT_THAT(message([&] { m.update({{"x", foreign}}); }), HasSubstr(not_ours));
  EXPECT_THAT(message([&] { m.insert_or_assign("x", nullptr); }), HasSubstr("is empty"));
  EXPECT_THAT(m.keys(), ElementsAre("a"));
  EXPECT_EQ(m.get("a"), a);
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
