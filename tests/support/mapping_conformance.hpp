// support/mapping_conformance.hpp — a typed conformance suite shared by weakref::weak_value_map
// and weakref::weak_key_map (include dir: tests/).
//
// Each map is driven through an adapter that knows how to build a (key, value) pair, put it in
// the map, look it up, and which side is held weakly. A pair is described by `held`: two small
// ints (the key id and the value id) plus `obj`, the weakly held object — the value of a
// weak_value_map, the key of a weak_key_map. Resetting `obj` kills the entry. Every observation
// is turned back into (key id, value id) pairs, so one test body checks both maps.
//
//   INSTANTIATE_TYPED_TEST_SUITE_P(value_map, weak_mapping,
//   mapping_conformance::value_map_adapter);
//
// Expected behaviour follows CPython 3.11's WeakValueDictionary / WeakKeyDictionary (dicts keep
// insertion order, `d[k] = v` keeps k's place, popitem() is LIFO and skips dead entries).
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_value_map.hpp"

namespace mapping_conformance {

// The weakly held object: an id, nothing else.
struct item {
  explicit item(int i) : id(i) {}
  int id;
};

// One (key, value) pair as a test keeps it; `obj` is the weakly held side.
struct held {
  int key;
  int value;
  std::shared_ptr<item> obj;
};

using id_pair = std::pair<int, int>;  // (key id, value id)

// weak_value_map<int, item>: the key is the int, the value the object (whose id is the value).
struct value_map_adapter {
  using map = weakref::weak_value_map<int, item>;

  static held make(int key, int value) { return {key, value, weakref::make_shared<item>(value)}; }
  // The same key with a new value: for this map, a new object.
  static held reassigned(const held& h, int value) { return make(h.key, value); }

  static void put(map& m, const held& h) { m.insert_or_assign(h.key, h.obj); }
  static bool try_put(map& m, const held& h) { return m.try_emplace(h.key, h.obj).second; }
  static std::optional<int> lookup(const map& m, const held& h) {
    if (auto value = m.get(h.key)) return value->id;
    return std::nullopt;
  }
  static bool contains(const map& m, const held& h) { return m.contains(h.key); }
  static std::size_t erase(map& m, const held& h) { return m.erase(h.key); }
  static id_pair popitem(map& m) {
    auto [key, value] = m.popitem();
    return {key, value->id};
  }
  static void update(map& m, const std::vector<held>& items) {
    std::vector<std::pair<int, std::shared_ptr<item>>> pairs;
    for (const auto& h : items) pairs.emplace_back(h.key, h.obj);
    m.update(pairs);
  }
  static id_pair ids(const map::value_type& kv) { return {kv.first, kv.second->id}; }
};

// weak_key_map<item, int>: the key is the object (whose id is the key), the value the int.
struct key_map_adapter {
  using map = weakref::weak_key_map<item, int>;

  static held make(int key, int value) { return {key, value, weakref::make_shared<item>(key)}; }
  // The same key with a new value: for this map, the same object.
  static held reassigned(const held& h, int value) { return {h.key, value, h.obj}; }

  static void put(map& m, const held& h) { m.insert_or_assign(h.obj, h.value); }
  static bool try_put(map& m, const held& h) { return m.try_emplace(h.obj, h.value).second; }
  static std::optional<int> lookup(const map& m, const held& h) { return m.get(h.obj); }
  static bool contains(const map& m, const held& h) { return m.contains(h.obj); }
  static std::size_t erase(map& m, const held& h) { return m.erase(h.obj); }
  static id_pair popitem(map& m) {
    auto [key, value] = m.popitem();
    return {key->id, value};
  }
  static void update(map& m, const std::vector<held>& items) {
    std::vector<std::pair<std::shared_ptr<item>, int>> pairs;
    for (const auto& h : items) pairs.emplace_back(h.obj, h.value);
    m.update(pairs);
  }
  static id_pair ids(const map::value_type& kv) { return {kv.first->id, kv.second}; }
};

// What iterating `m` yields, as (key id, value id) in iteration order.
template <class A>
std::vector<id_pair> contents(const typename A::map& m) {
  std::vector<id_pair> result;
  for (const auto& kv : m) result.push_back(A::ids(kv));
  return result;
}

template <class Adapter>
class weak_mapping : public testing::Test {};

TYPED_TEST_SUITE_P(weak_mapping);

TYPED_TEST_P(weak_mapping, insert_then_lookup_finds_each_entry) {
  using A = TypeParam;
  typename A::map m;
  auto a = A::make(1, 10), b = A::make(2, 20), c = A::make(3, 30);
  for (const auto* h : {&a, &b, &c}) A::put(m, *h);
  EXPECT_EQ(m.size(), 3u);
  EXPECT_FALSE(m.empty());
  EXPECT_EQ(A::lookup(m, a), 10);
  EXPECT_EQ(A::lookup(m, b), 20);
  EXPECT_EQ(A::lookup(m, c), 30);
  EXPECT_TRUE(A::contains(m, b));
  auto absent = A::make(4, 40);
  EXPECT_EQ(A::lookup(m, absent), std::nullopt);
  EXPECT_FALSE(A::contains(m, absent));
  // try_emplace / insert never replace a live entry.
  EXPECT_FALSE(A::try_put(m, A::reassigned(a, 11)));
  EXPECT_EQ(A::lookup(m, a), 10);
  EXPECT_TRUE(A::try_put(m, absent));
  EXPECT_EQ(A::lookup(m, absent), 40);
  EXPECT_EQ(m.size(), 4u);
}

TYPED_TEST_P(weak_mapping, entry_is_erased_when_its_weak_object_dies) {
  using A = TypeParam;
  typename A::map m;
  auto a = A::make(1, 10), b = A::make(2, 20);
  A::put(m, a);
  A::put(m, b);
  auto key_of_a = A::make(1, 99);  // for a weak_value_map: looks key 1 up after a died
  a.obj.reset();
  EXPECT_EQ(m.size(), 1u);
  EXPECT_THAT(contents<A>(m), testing::ElementsAre(id_pair(2, 20)));
  EXPECT_EQ(A::lookup(m, b), 20);
  if constexpr (std::is_same_v<A, value_map_adapter>) {
    EXPECT_EQ(A::lookup(m, key_of_a), std::nullopt);
    EXPECT_FALSE(A::contains(m, key_of_a));
  }
  b.obj.reset();
  EXPECT_TRUE(m.empty());
}

TYPED_TEST_P(weak_mapping, iteration_skips_dead_entries) {
  using A = TypeParam;
  typename A::map m;
  std::vector<held> hs;
  for (int i = 0; i < 5; ++i) hs.push_back(A::make(i, 100 + i));
  for (const auto& h : hs) A::put(m, h);
  hs[1].obj.reset();
  hs[3].obj.reset();
  hs[4].obj.reset();
  EXPECT_THAT(contents<A>(m), testing::ElementsAre(id_pair(0, 100), id_pair(2, 102)));
}

// Many deaths behind a running iteration (enough to trigger compaction of the storage, which
// must wait until no iteration holds a position) neither skip nor repeat the entries ahead.
TYPED_TEST_P(weak_mapping, many_deaths_behind_an_iteration_do_not_disturb_it) {
  using A = TypeParam;
  typename A::map m;
  std::vector<held> hs;
  for (int i = 0; i < 30; ++i) hs.push_back(A::make(i, i));
  for (const auto& h : hs) A::put(m, h);
  std::vector<int> seen;
  for (const auto& kv : m) {
    seen.push_back(A::ids(kv).first);
    if (seen.back() == 20) {
      for (int i = 0; i < 20; ++i) hs[i].obj.reset();
      EXPECT_EQ(m.size(), 10u);
    }
  }
  std::vector<int> all(30);
  for (int i = 0; i < 30; ++i) all[i] = i;
  EXPECT_EQ(seen, all);
  EXPECT_EQ(m.size(), 10u);
  EXPECT_EQ(contents<A>(m).front(), id_pair(20, 20));
}

TYPED_TEST_P(weak_mapping, size_counts_only_live_entries_after_expiry) {
  using A = TypeParam;
  typename A::map m;
  std::vector<held> hs;
  for (int i = 0; i < 20; ++i) hs.push_back(A::make(i, i));
  for (const auto& h : hs) A::put(m, h);
  EXPECT_EQ(m.size(), 20u);
  for (int i = 0; i < 20; i += 2) hs[i].obj.reset();
  EXPECT_EQ(m.size(), 10u);
  for (int i = 1; i < 19; i += 2) hs[i].obj.reset();  // past the compaction threshold
  EXPECT_EQ(m.size(), 1u);
  EXPECT_FALSE(m.empty());
  EXPECT_THAT(contents<A>(m), testing::ElementsAre(id_pair(19, 19)));
  EXPECT_EQ(A::lookup(m, hs[19]), 19);
  hs[19].obj.reset();
  EXPECT_EQ(m.size(), 0u);
  EXPECT_TRUE(m.empty());
  EXPECT_THAT(contents<A>(m), testing::ElementsAre());
}

TYPED_TEST_P(weak_mapping, iteration_follows_insertion_order) {
  using A = TypeParam;
  typename A::map m;
  std::vector<held> hs;
  for (int key : {5, 1, 4, 2, 3}) hs.push_back(A::make(key, key * 10));
  for (const auto& h : hs) A::put(m, h);
  EXPECT_THAT(contents<A>(m), testing::ElementsAre(id_pair(5, 50), id_pair(1, 10), id_pair(4, 40),
                                                   id_pair(2, 20), id_pair(3, 30)));
  // A key inserted again after its entry died goes to the end (Python: the entry was removed).
  auto again = A::make(6, 60);
  A::put(m, again);
  hs[0].obj.reset();
  auto five = A::make(5, 55);
  A::put(m, five);
  EXPECT_THAT(contents<A>(m), testing::ElementsAre(id_pair(1, 10), id_pair(4, 40), id_pair(2, 20),
                                                   id_pair(3, 30), id_pair(6, 60), id_pair(5, 55)));
}

TYPED_TEST_P(weak_mapping, assigning_an_existing_key_keeps_its_place) {
  using A = TypeParam;
  typename A::map m;
  auto a = A::make(1, 10), b = A::make(2, 20), c = A::make(3, 30);
  for (const auto* h : {&a, &b, &c}) A::put(m, *h);
  auto a2 = A::reassigned(a, 11);
  A::put(m, a2);
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(A::lookup(m, a2), 11);
  EXPECT_THAT(contents<A>(m), testing::ElementsAre(id_pair(1, 11), id_pair(2, 20), id_pair(3, 30)));
  auto b2 = A::reassigned(b, 21);
  A::put(m, b2);
  EXPECT_THAT(contents<A>(m), testing::ElementsAre(id_pair(1, 11), id_pair(2, 21), id_pair(3, 30)));
}

TYPED_TEST_P(weak_mapping, popitem_takes_the_newest_live_entry) {
  using A = TypeParam;
  typename A::map m;
  auto a = A::make(1, 10), b = A::make(2, 20), c = A::make(3, 30), d = A::make(4, 40);
  for (const auto* h : {&a, &b, &c, &d}) A::put(m, *h);
  auto a2 = A::reassigned(a, 11);  // reassigning does not make it the newest
  A::put(m, a2);
  EXPECT_EQ(A::popitem(m), id_pair(4, 40));
  EXPECT_EQ(m.size(), 3u);
  c.obj.reset();  // the newest is dead: popitem skips it (CPython: LIFO, dead ones discarded)
  EXPECT_EQ(A::popitem(m), id_pair(2, 20));
  EXPECT_EQ(A::popitem(m), id_pair(1, 11));
  EXPECT_TRUE(m.empty());
  EXPECT_THROW(A::popitem(m), std::out_of_range);
}

TYPED_TEST_P(weak_mapping, clear_removes_every_entry_and_its_weak_reference) {
  using A = TypeParam;
  typename A::map m;
  auto a = A::make(1, 10), b = A::make(2, 20);
  A::put(m, a);
  A::put(m, b);
  EXPECT_EQ(weakref::getweakrefcount(a.obj), 1u);
  m.clear();
  EXPECT_EQ(m.size(), 0u);
  EXPECT_THAT(contents<A>(m), testing::ElementsAre());
  EXPECT_EQ(A::lookup(m, a), std::nullopt);
  EXPECT_EQ(weakref::getweakrefcount(a.obj), 0u);
  EXPECT_EQ(weakref::getweakrefcount(b.obj), 0u);
  A::put(m, b);  // still usable
  a.obj.reset();
  EXPECT_THAT(contents<A>(m), testing::ElementsAre(id_pair(2, 20)));
  b.obj.reset();
  EXPECT_EQ(m.size(), 0u);
}

TYPED_TEST_P(weak_mapping, copy_is_independent_but_tracks_the_same_objects) {
  using A = TypeParam;
  typename A::map m;
  auto a = A::make(1, 10), b = A::make(2, 20), c = A::make(3, 30);
  A::put(m, a);
  A::put(m, b);
  auto copied = m.copy();
  typename A::map constructed(m);
  EXPECT_EQ(weakref::getweakrefcount(b.obj), 3u);  // one weak reference per map entry
  EXPECT_EQ(A::erase(m, a), 1u);
  A::put(copied, c);
  EXPECT_THAT(contents<A>(m), testing::ElementsAre(id_pair(2, 20)));
  EXPECT_THAT(contents<A>(copied),
              testing::ElementsAre(id_pair(1, 10), id_pair(2, 20), id_pair(3, 30)));
  EXPECT_THAT(contents<A>(constructed), testing::ElementsAre(id_pair(1, 10), id_pair(2, 20)));
  b.obj.reset();  // a death reaches every copy
  EXPECT_EQ(m.size(), 0u);
  EXPECT_THAT(contents<A>(copied), testing::ElementsAre(id_pair(1, 10), id_pair(3, 30)));
  EXPECT_THAT(contents<A>(constructed), testing::ElementsAre(id_pair(1, 10)));
  typename A::map assigned;
  assigned = copied;
  A::erase(copied, c);
  EXPECT_THAT(contents<A>(assigned), testing::ElementsAre(id_pair(1, 10), id_pair(3, 30)));
}

TYPED_TEST_P(weak_mapping, update_inserts_new_keys_and_assigns_existing_ones_in_place) {
  using A = TypeParam;
  typename A::map m;
  auto p = A::make(1, 10), q = A::make(2, 20), r = A::make(3, 30);
  A::put(m, p);
  A::put(m, q);
  auto q2 = A::reassigned(q, 21);
  A::update(m, {q2, r});  // Python: [('p', 1), ('q', 3), ('r', 1)]
  EXPECT_THAT(contents<A>(m), testing::ElementsAre(id_pair(1, 10), id_pair(2, 21), id_pair(3, 30)));
  typename A::map other;
  auto s = A::make(4, 40);
  auto p2 = A::reassigned(p, 11);
  A::put(other, s);
  A::put(other, p2);
  m.update(other);  // another map of the same type
  EXPECT_THAT(contents<A>(m),
              testing::ElementsAre(id_pair(1, 11), id_pair(2, 21), id_pair(3, 30), id_pair(4, 40)));
}

TYPED_TEST_P(weak_mapping, equality_compares_live_entries_in_any_order) {
  using A = TypeParam;
  typename A::map m1, m2;
  auto a = A::make(1, 10), b = A::make(2, 20), extra = A::make(3, 30);
  A::put(m1, a);
  A::put(m1, b);
  A::put(m2, b);
  A::put(m2, a);
  EXPECT_TRUE(m1 == m2);
  EXPECT_FALSE(m1 != m2);
  A::put(m2, extra);
  EXPECT_FALSE(m1 == m2);
  EXPECT_FALSE(m2 == m1);
  extra.obj.reset();  // the extra entry dies: equal again
  EXPECT_TRUE(m1 == m2);
  auto a2 = A::reassigned(a, 11);
  A::put(m2, a2);
  EXPECT_FALSE(m1 == m2);
  EXPECT_TRUE(typename A::map() == typename A::map());
}

TYPED_TEST_P(weak_mapping, erase_by_key_returns_the_number_removed) {
  using A = TypeParam;
  typename A::map m;
  auto a = A::make(1, 10), b = A::make(2, 20);
  A::put(m, a);
  A::put(m, b);
  EXPECT_EQ(A::erase(m, a), 1u);
  EXPECT_EQ(A::erase(m, a), 0u);
  EXPECT_EQ(weakref::getweakrefcount(a.obj), 0u);  // its weak reference went with the entry
  EXPECT_THAT(contents<A>(m), testing::ElementsAre(id_pair(2, 20)));
  EXPECT_EQ(A::lookup(m, a), std::nullopt);
}

TYPED_TEST_P(weak_mapping, each_entry_is_one_weak_reference_on_its_object) {
  using A = TypeParam;
  typename A::map m;
  auto a = A::make(1, 10);
  A::put(m, a);
  EXPECT_EQ(weakref::getweakrefcount(a.obj), 1u);
  A::put(m, A::reassigned(a, 10));  // re-setting the key: still one (CPython: 1)
  A::put(m, a);
  EXPECT_EQ(weakref::getweakrefcount(a.obj), 1u);
  weakref::ref<item> r(a.obj);
  EXPECT_EQ(weakref::getweakrefcount(a.obj), 2u);
}

TYPED_TEST_P(weak_mapping, moved_from_map_is_empty_and_usable) {
  using A = TypeParam;
  typename A::map m;
  auto a = A::make(1, 10), b = A::make(2, 20);
  A::put(m, a);
  typename A::map moved(std::move(m));
  EXPECT_THAT(contents<A>(moved), testing::ElementsAre(id_pair(1, 10)));
  EXPECT_EQ(m.size(), 0u);  // NOLINT(bugprone-use-after-move): valid but unspecified state
  A::put(m, b);
  EXPECT_THAT(contents<A>(m), testing::ElementsAre(id_pair(2, 20)));
  b.obj.reset();
  EXPECT_EQ(m.size(), 0u);
  a.obj.reset();
  EXPECT_EQ(moved.size(), 0u);
}

REGISTER_TYPED_TEST_SUITE_P(
    weak_mapping, insert_then_lookup_finds_each_entry, entry_is_erased_when_its_weak_object_dies,
    iteration_skips_dead_entries, many_deaths_behind_an_iteration_do_not_disturb_it,
    size_counts_only_live_entries_after_expiry, iteration_follows_insertion_order,
    assigning_an_existing_key_keeps_its_place, popitem_takes_the_newest_live_entry,
    clear_removes_every_entry_and_its_weak_reference,
    copy_is_independent_but_tracks_the_same_objects,
    update_inserts_new_keys_and_assigns_existing_ones_in_place,
    equality_compares_live_entries_in_any_order, erase_by_key_returns_the_number_removed,
    each_entry_is_one_weak_reference_on_its_object, moved_from_map_is_empty_and_usable);

}  // namespace mapping_conformance
