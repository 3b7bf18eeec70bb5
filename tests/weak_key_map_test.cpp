// Tests for weakref::weak_key_map: the shared mapping conformance suite, then what is specific
// to it — the side-table idiom (operator[]), get/at/pop/popitem/setdefault (CPython's
// WeakKeyDictionary, checked against python3 3.11), keyrefs and getweakrefcount, values dying
// with their keys, move-only values and stable value references.
// Also: weak_key_map_iteration_test.cpp, weak_key_map_identity_test.cpp.
#include "weakref/weak_key_map.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/mapping_conformance.hpp"
#include "support/weak_key_map_helpers.hpp"
#include "weakref/ref.hpp"

namespace mapping_conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(key_map, weak_mapping, key_map_adapter);
}  // namespace mapping_conformance

namespace {

using weak_key_map_helpers::make;
using weak_key_map_helpers::widget;
using weak_key_map_helpers::wmap;
using weakref::getweakrefcount;

TEST(weak_key_map, operator_brackets_default_inserts_for_the_side_table_idiom) {
  struct meta {
    int count = 0;
    std::string note = "new";
  };
  weakref::weak_key_map<widget, meta> m;
  auto w = make(1), v = make(2);
  m[w].count++;
  m[w].count++;
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m[w].count, 2);
  EXPECT_EQ(m[v].count, 0);
  EXPECT_EQ(m[v].note, "new");
  EXPECT_EQ(m.size(), 2u);
  w.reset();
  EXPECT_EQ(m.size(), 1u);
}

// erase_if (found by argument-dependent lookup) passes (key, value&) pairs, removes those the
// predicate selects and returns how many.
TEST(weak_key_map, erase_if_removes_the_entries_a_predicate_selects) {
  auto w1 = make(1), w2 = make(2), w3 = make(3);
  wmap m{{w1, 10}, {w2, 20}, {w3, 30}};
  auto removed = erase_if(m, [](const auto& item) {
    const auto& [key, value] = item;
    return key->id == 1 || value == 30;
  });
  EXPECT_EQ(removed, 2u);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_TRUE(m.contains(w2));
}

TEST(weak_key_map, get_returns_an_optional_copy_or_the_fallback) {
  wmap m;
  auto a = make(1), absent = make(2);
  m[a] = 10;
  std::optional<int> got = m.get(a);
  EXPECT_EQ(got, 10);
  EXPECT_EQ(m.get(absent), std::nullopt);  // Python: None
  EXPECT_EQ(m.get(a, 3), 10);
  EXPECT_EQ(m.get(absent, 3), 3);
}

TEST(weak_key_map, at_returns_a_modifiable_reference_or_throws_out_of_range) {
  wmap m;
  auto a = make(1), absent = make(2);
  m[a] = 10;
  m.at(a) = 11;
  EXPECT_EQ(m.get(a), 11);
  const wmap& cm = m;
  EXPECT_EQ(cm.at(a), 11);
  EXPECT_THROW(m.at(absent), std::out_of_range);  // Python: KeyError
  EXPECT_THROW(cm.at(absent), std::out_of_range);
}

TEST(weak_key_map, pop_removes_the_entry_and_returns_its_value) {
  wmap m;
  auto a = make(1), b = make(2);
  m[a] = 10;
  m[b] = 20;
  EXPECT_EQ(m.pop(a), 10);
  EXPECT_FALSE(m.contains(a));
  EXPECT_EQ(getweakrefcount(a), 0u);
  EXPECT_THROW(m.pop(a), std::out_of_range);  // Python: KeyError
  EXPECT_EQ(m.pop(a, 7), 7);                  // Python: pop(k, 'x') -> 'x'
  EXPECT_EQ(m.pop(b, 7), 20);
  EXPECT_TRUE(m.empty());
}

// Python: a, b, c inserted, a reassigned: popitem() -> (c, 3); empty -> KeyError.
TEST(weak_key_map, popitem_returns_the_newest_live_key_and_its_value) {
  wmap m;
  auto a = make(1), b = make(2), c = make(3), d = make(4);
  m[a] = 1;
  m[b] = 2;
  m[c] = 3;
  m[d] = 4;
  m[a] = 10;
  d.reset();
  auto [key, value] = m.popitem();
  EXPECT_EQ(key, c);
  EXPECT_EQ(value, 3);
  EXPECT_EQ(m.popitem(), std::make_pair(b, 2));
  EXPECT_EQ(m.popitem(), std::make_pair(a, 10));
  EXPECT_THROW(m.popitem(), std::out_of_range);
}

// Python: setdefault(k1, 99) -> 10 (existing), setdefault(new, 5) -> 5.
TEST(weak_key_map, setdefault_returns_a_modifiable_reference) {
  wmap m;
  auto a = make(1), c = make(3), d = make(4);
  m[a] = 10;
  EXPECT_EQ(m.setdefault(a, 99), 10);
  m.setdefault(c, 5) += 1;
  EXPECT_EQ(m.at(c), 6);
  EXPECT_EQ(m.setdefault(c, 99), 6);
  int& ref = m.setdefault(d);
  EXPECT_EQ(ref, 0);  // V()
  ref = 42;
  EXPECT_EQ(m.get(d), 42);
}

// CPython test_weak_keys: one weak reference per map entry; setting the key again keeps 1.
TEST(weak_key_map, keyrefs_share_the_maps_weak_references) {
  wmap m, other;
  auto a = make(1), b = make(2);
  m[a] = 1;
  m[b] = 2;
  EXPECT_EQ(getweakrefcount(a), 1u);
  EXPECT_EQ(getweakrefcount(b), 1u);
  m[a] = 10;
  m.insert_or_assign(a, 11);
  EXPECT_EQ(getweakrefcount(a), 1u);
  auto refs = m.keyrefs();
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(getweakrefcount(a), 1u);  // shared, not new
  EXPECT_EQ(refs[0].lock(), a);
  EXPECT_EQ(refs[1].lock(), b);
  EXPECT_TRUE(refs[0].has_callback());  // Python: keyrefs carry the map's callback
  other[a] = 0;
  EXPECT_EQ(getweakrefcount(a), 2u);  // Python: 2 with two maps
  a.reset();
  EXPECT_FALSE(refs[0].alive());
  EXPECT_EQ(m.keyrefs().size(), 1u);
}

// A value that counts its own destruction (moves transfer the duty).
struct counted {
  counted(int* deaths, int v) : deaths_(deaths), value(v) {}
  counted(counted&& other) noexcept
      : deaths_(std::exchange(other.deaths_, nullptr)), value(other.value) {}
  counted& operator=(counted&&) = delete;
  ~counted() {
    if (deaths_) ++*deaths_;
  }
  int* deaths_;
  int value;
};

TEST(weak_key_map, value_is_destroyed_once_its_key_dies) {
  int deaths = 0;
  auto a = make(1), b = make(2), c = make(3);
  {
    weakref::weak_key_map<widget, counted> m;
    m.try_emplace(a, &deaths, 1);
    m.try_emplace(b, &deaths, 2);
    m.try_emplace(c, &deaths, 3);
    EXPECT_EQ(deaths, 0);
    a.reset();
    EXPECT_EQ(m.size(), 2u);  // applied at the map's next operation, at the latest
    EXPECT_EQ(deaths, 1);
    EXPECT_EQ(m.erase(b), 1u);
    EXPECT_EQ(deaths, 2);
    EXPECT_EQ(m.at(c).value, 3);
  }
  EXPECT_EQ(deaths, 3);  // the map's destruction
}

// Python: d[k1] = [k2]; d[k2] = 'x'; del k2; del k1 -> len(d) == 0 and list(d) == [].
TEST(weak_key_map, size_is_exact_when_a_dead_keys_value_releases_another_key) {
  weakref::weak_key_map<widget, std::shared_ptr<widget>> m;
  auto k1 = make(1), k2 = make(2);
  m[k1] = k2;  // k1's value owns k2
  m[k2] = nullptr;
  k2.reset();
  EXPECT_EQ(m.size(), 2u);
  k1.reset();  // k1's entry goes, its value releases k2, so k2's entry goes too
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.keys().size(), 0u);
  EXPECT_TRUE(m.empty());
}

TEST(weak_key_map, move_only_values_work) {
  weakref::weak_key_map<widget, std::unique_ptr<int>> m;
  auto a = make(1), b = make(2);
  m[a] = std::make_unique<int>(5);
  EXPECT_TRUE(m.try_emplace(b, std::make_unique<int>(6)).second);
  m.insert_or_assign(b, std::make_unique<int>(7));
  EXPECT_EQ(*m.at(a), 5);
  EXPECT_EQ(*m.pop(a), 5);
  auto [key, value] = m.popitem();
  EXPECT_EQ(key, b);
  EXPECT_EQ(*value, 7);
}

}  // namespace

TEST(weak_key_map, value_references_stay_valid_while_other_entries_come_and_go) {
  weakref::weak_key_map<widget, std::string> m;
  auto keep = make(0);
  std::string& note = m[keep];
  note = "kept";
  const std::string* address = &note;
  for (int round = 0; round < 4; ++round) {  // enough deaths to squeeze the holes out
    std::vector<std::shared_ptr<widget>> transient;
    for (int i = 1; i <= 100; ++i) {
      transient.push_back(make(i));
      m[transient.back()] = "transient";
    }
    transient.clear();
    EXPECT_EQ(m.size(), 1u);
  }
  EXPECT_EQ(&m.at(keep), address);
  EXPECT_EQ(note, "kept");
  note += "!";
  EXPECT_EQ(m.get(keep), "kept!");
}
