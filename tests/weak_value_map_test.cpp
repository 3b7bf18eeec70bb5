// Tests for weakref::weak_value_map: the shared mapping conformance suite, then what is
// specific to it — CPython's WeakValueDictionary semantics for get/at/pop/setdefault/popitem
// (checked against python3 3.11), valuerefs and getweakrefcount, lifetimes (the map before its
// values, one value in several maps), structured bindings and non-weakrefable values.
// Also: weak_value_map_iteration_test.cpp, weak_value_map_stale_deaths_test.cpp,
// weak_value_map_throwing_hash_test.cpp.
#include "weakref/weak_value_map.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "support/mapping_conformance.hpp"
#include "support/tracked.hpp"
#include "support/type_error_message.hpp"
#include "support/weak_value_map_helpers.hpp"
#include "weakref/ref.hpp"

namespace mapping_conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(value_map, weak_mapping, value_map_adapter);
}  // namespace mapping_conformance

namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using weak_value_map_helpers::tmap;
using weak_value_map_helpers::weak_value_map;
using weakref::getweakrefcount;

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

// Once holes (removed entries) outnumber live ones, the insertion order is compacted: the
// entries before the first hole stay where they are, the later ones move up. Both kinds must
// then be found at their place by erase(iterator), a death and popitem().
TEST_F(weak_value_map, entries_before_and_after_the_first_hole_survive_compaction) {
  tmap m;
  std::vector<std::shared_ptr<tracked>> objects;
  for (int i = 0; i < 30; ++i) {
    objects.push_back(make(std::to_string(i)));
    m.insert_or_assign(std::to_string(i), objects.back());
  }
  for (int i = 5; i < 10; ++i) m.erase(std::to_string(i));  // the first hole at 5
  for (int i = 15; i < 30; ++i) objects[i].reset();         // 20 holes, 10 live: compacted
  EXPECT_EQ(m.size(), 10u);
  EXPECT_THAT(m.keys(), ElementsAre("0", "1", "2", "3", "4", "10", "11", "12", "13", "14"));
  m.erase(m.find("3"));   // stayed
  m.erase(m.find("11"));  // moved
  objects[1].reset();
  objects[13].reset();
  EXPECT_THAT(m.keys(), ElementsAre("0", "2", "4", "10", "12", "14"));
  EXPECT_EQ(m.popitem().first, "14");
  m.insert_or_assign("new", objects[0]);
  EXPECT_EQ(m.popitem().first, "new");
  EXPECT_EQ(m.popitem().first, "12");
  EXPECT_THAT(m.keys(), ElementsAre("0", "2", "4", "10"));
}

// erase_if (found by argument-dependent lookup) passes (key, value) pairs of live entries,
// removes those the predicate selects and returns how many.
TEST_F(weak_value_map, erase_if_removes_the_entries_a_predicate_selects) {
  auto a = make("a"), b = make("b"), c = make("c");
  tmap m{{"a", a}, {"b", b}, {"c", c}, {"d", make("d")}};  // d dies at once: not passed
  std::size_t calls = 0;
  auto removed = erase_if(m, [&](const auto& item) {
    ++calls;
    return item.first == "a" || item.second == c;
  });
  EXPECT_EQ(removed, 2u);
  EXPECT_EQ(calls, 3u);
  EXPECT_THAT(m.keys(), ElementsAre("b"));
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
  const auto* not_ours = "was not created by weakref::make_shared";
  EXPECT_THAT(type_error_message([&] { m.insert_or_assign("x", foreign); }), HasSubstr(not_ours));
  EXPECT_THAT(type_error_message([&] { m.insert_or_assign("a", foreign); }), HasSubstr(not_ours));
  EXPECT_THAT(type_error_message([&] { m.try_emplace("x", foreign); }), HasSubstr(not_ours));
  EXPECT_THAT(type_error_message([&] { m.insert({"x", foreign}); }), HasSubstr(not_ours));
  EXPECT_THAT(type_error_message([&] { m.setdefault("x", foreign); }), HasSubstr(not_ours));
  EXPECT_THAT(type_error_message([&] { m.update({{"x", foreign}}); }), HasSubstr(not_ours));
  EXPECT_THAT(type_error_message([&] { m.insert_or_assign("x", nullptr); }), HasSubstr("is empty"));
  EXPECT_THAT(m.keys(), ElementsAre("a"));
  EXPECT_EQ(m.get("a"), a);
}

// A key that counts how many were made, and a transparent hash and equality that also take an
// int: lookups by int must find the keys without making one.
struct counted_key {
  explicit counted_key(int k) : id(k) { ++made; }
  counted_key(const counted_key& other) : id(other.id) { ++made; }
  int id;
  static inline int made = 0;
};
struct id_hash {
  using is_transparent = void;
  std::size_t operator()(const counted_key& k) const { return std::hash<int>()(k.id); }
  std::size_t operator()(int id) const {
    if (id < 0) throw std::invalid_argument("id_hash: negative id");  // user code that throws
    return std::hash<int>()(id);
  }
};
struct id_equal {
  using is_transparent = void;
  static int id_of(const counted_key& k) { return k.id; }
  static int id_of(int id) { return id; }
  bool operator()(const auto& a, const auto& b) const { return id_of(a) == id_of(b); }
};

template <class Map, class Key>
concept looks_up_by = requires(Map& m, const Key& k) {
  m.find(k);
};

// As std::unordered_map's (C++20): with a transparent Hash and KeyEqual, lookups take any key
// type they accept; otherwise only K (and what converts to it).
TEST_F(weak_value_map, transparent_hash_and_equal_look_up_keys_of_other_types) {
  weakref::weak_value_map<counted_key, tracked, id_hash, id_equal> m;
  auto a = make("a"), b = make("b"), c = make("c"), fallback = make("fallback");
  m.insert_or_assign(counted_key(1), a);
  m.insert_or_assign(counted_key(2), b);
  m.insert_or_assign(counted_key(3), c);
  counted_key::made = 0;
  EXPECT_TRUE(m.contains(1));
  EXPECT_FALSE(m.contains(4));
  EXPECT_EQ(m.count(2), 1u);
  EXPECT_EQ(m.find(2)->second, b);
  EXPECT_EQ(m.find(4), m.end());
  EXPECT_EQ(m.get(1), a);
  EXPECT_EQ(m.get(4), nullptr);
  EXPECT_EQ(m.get(4, fallback), fallback);
  EXPECT_EQ(m.at(3), c);
  EXPECT_THROW(m.at(4), std::out_of_range);
  EXPECT_EQ(m.pop(3), c);
  EXPECT_THROW(m.pop(3), std::out_of_range);
  EXPECT_EQ(m.pop(3, fallback), fallback);
  EXPECT_EQ(m.erase(2), 1u);
  EXPECT_EQ(m.erase(2), 0u);
  b.reset();
  EXPECT_EQ(counted_key::made, 0);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.get(counted_key(1)), a);  // K itself still works

  static_assert(looks_up_by<decltype(m), int>);
  static_assert(looks_up_by<tmap, std::string>);
  static_assert(looks_up_by<tmap, const char*>);        // converts to std::string
  static_assert(!looks_up_by<tmap, std::string_view>);  // no transparent hash: K only
}

// A transparent Hash that throws leaves the map as it was, as it does for K.
TEST_F(weak_value_map, heterogeneous_lookups_whose_hash_throws_change_nothing) {
  weakref::weak_value_map<counted_key, tracked, id_hash, id_equal> m;
  auto a = make("a");
  m.insert_or_assign(counted_key(1), a);
  EXPECT_THROW(m.get(-1), std::invalid_argument);
  EXPECT_THROW((void)m.contains(-1), std::invalid_argument);
  EXPECT_THROW(m.find(-1), std::invalid_argument);
  EXPECT_THROW(m.erase(-1), std::invalid_argument);
  EXPECT_THROW(m.pop(-1), std::invalid_argument);
  EXPECT_THROW(m.pop(-1, a), std::invalid_argument);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.get(1), a);
}

// The heterogeneous lookups are const members: several threads may call them on one map at
// once, also with deaths posted and not yet applied (ThreadSanitizer).
TEST_F(weak_value_map, heterogeneous_const_lookups_run_on_several_threads_at_once) {
  weakref::weak_value_map<counted_key, tracked, id_hash, id_equal> m;
  std::vector<std::shared_ptr<tracked>> owners;
  for (int i = 0; i < 64; ++i) {
    owners.push_back(make("v"));
    m.insert_or_assign(counted_key(i), owners.back());
  }
  for (int i = 0; i < 64; i += 2) owners[static_cast<std::size_t>(i)].reset();  // posted
  const auto& reader = m;
  auto read = [&reader](int* live) {
    for (int round = 0; round < 20; ++round) {
      int n = 0;
      for (int i = 0; i < 64; ++i) {
        bool found = reader.get(i) != nullptr;
        EXPECT_EQ(reader.contains(i), found);
        EXPECT_EQ(reader.count(i), found ? 1u : 0u);
        EXPECT_EQ(reader.find(i) != reader.end(), found);
        n += found;
      }
      *live = n;
    }
  };
  int live1 = 0, live2 = 0;
  std::thread other(read, &live1);
  read(&live2);
  other.join();
  EXPECT_EQ(live1, 32);
  EXPECT_EQ(live2, 32);
}

}  // namespace
