// Tests for how a weakref::weak_key_map matches keys: by object identity (not value equality,
// a deliberate difference from CPython), through base-class and aliasing pointers, never by a
// dead key's reused address; foreign or empty keys find nothing and cannot be inserted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

#include "support/multiple_bases.hpp"
#include "support/type_error_message.hpp"
#include "support/weak_key_map_helpers.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_key_map.hpp"

namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using weak_key_map_helpers::make;
using weak_key_map_helpers::widget;
using weak_key_map_helpers::wmap;
using weakref::getweakrefcount;

// A dead key's entry pins its object's allocation until the map drops the entry, so a reused
// address can only show up once the map let go; it must never find the old entry.
TEST(weak_key_map, new_object_at_a_dead_keys_address_does_not_find_its_entry) {
  wmap m;
  auto keeper = make(0);
  m[keeper] = 0;
  std::set<const widget*> dead;
  for (int i = 1; i <= 2000; ++i) {
    auto key = make(i);
    m[key] = i;
    dead.insert(key.get());
    key.reset();
    auto fresh = make(-i);
    if (dead.count(fresh.get()) != 0) {
      EXPECT_FALSE(m.contains(fresh));
      EXPECT_EQ(m.count(fresh), 0u);
      EXPECT_EQ(m.get(fresh), std::nullopt);
      EXPECT_EQ(m.find(fresh), m.end());
      EXPECT_EQ(m.erase(fresh), 0u);
      EXPECT_EQ(m.size(), 1u);
      EXPECT_THAT(m.values(), ElementsAre(0));
      m[fresh] = -1;  // a new entry of its own
      EXPECT_THAT(m.values(), ElementsAre(0, -1));
      return;
    }
  }
  GTEST_SKIP() << "no address was reused after 2000 deaths (an allocator quarantine, e.g. "
                  "AddressSanitizer's, delays reuse); nothing to check";
}

// A deliberate difference from CPython, which matches keys by ==: here two equal objects
// are two keys (identity).
TEST(weak_key_map, keys_match_by_identity_not_value_equality) {
  struct valued {
    int v;
    bool operator==(const valued&) const = default;
  };
  weakref::weak_key_map<valued, int> m;
  auto x = weakref::make_shared<valued>(valued{1}), y = weakref::make_shared<valued>(valued{1});
  ASSERT_TRUE(*x == *y);
  m[x] = 1;
  m[y] = 2;
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.at(x), 1);
  EXPECT_EQ(m.at(y), 2);
  x.reset();
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.at(y), 2);
}

using multiple_bases::base_b;
using multiple_bases::derived;

TEST(weak_key_map, base_class_and_aliasing_pointers_find_the_same_entry) {
  weakref::weak_key_map<base_b, int> m;
  auto d = weakref::make_shared<derived>();
  std::shared_ptr<base_b> as_base = d;
  std::shared_ptr<base_b> alias(d, &d->inner);
  ASSERT_NE(static_cast<void*>(as_base.get()), static_cast<void*>(d.get()));
  m[d] = 1;
  EXPECT_TRUE(m.contains(as_base));
  EXPECT_TRUE(m.contains(alias));
  m[alias] += 1;
  EXPECT_FALSE(m.try_emplace(as_base, 5).second);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.at(as_base), 2);
  EXPECT_EQ(getweakrefcount(d), 1u);
  for (const auto& [key, value] : m) EXPECT_EQ(key.get(), as_base.get());
  EXPECT_EQ(m.erase(alias), 1u);
  EXPECT_TRUE(m.empty());
}

TEST(weak_key_map, lookups_with_foreign_or_empty_keys_find_nothing_without_throwing) {
  wmap m;
  auto a = make(1);
  m[a] = 1;
  auto foreign = std::make_shared<widget>(2);
  std::shared_ptr<widget> empty;
  for (const auto* key : {&foreign, &empty}) {
    EXPECT_FALSE(m.contains(*key));
    EXPECT_EQ(m.count(*key), 0u);
    EXPECT_EQ(m.get(*key), std::nullopt);
    EXPECT_EQ(m.get(*key, 7), 7);
    EXPECT_EQ(m.find(*key), m.end());
    EXPECT_EQ(m.erase(*key), 0u);
    EXPECT_EQ(m.pop(*key, 9), 9);
    EXPECT_THROW(m.at(*key), std::out_of_range);
    EXPECT_THROW(m.pop(*key), std::out_of_range);
  }
  EXPECT_THAT(m.values(), ElementsAre(1));
}

TEST(weak_key_map, inserting_a_foreign_or_empty_key_throws_type_error) {
  wmap m;
  auto a = make(1);
  m[a] = 1;
  auto foreign = std::make_shared<widget>(2);
  const auto* not_ours = "was not created by weakref::make_shared";
  EXPECT_THAT(type_error_message([&] { m[foreign] = 2; }), HasSubstr(not_ours));
  EXPECT_THAT(type_error_message([&] { m.insert({foreign, 2}); }), HasSubstr(not_ours));
  EXPECT_THAT(type_error_message([&] { m.try_emplace(foreign, 2); }), HasSubstr(not_ours));
  EXPECT_THAT(type_error_message([&] { m.insert_or_assign(foreign, 2); }), HasSubstr(not_ours));
  EXPECT_THAT(type_error_message([&] { m.setdefault(foreign, 2); }), HasSubstr(not_ours));
  EXPECT_THAT(type_error_message([&] { m.update({{foreign, 2}}); }), HasSubstr(not_ours));
  EXPECT_THAT(type_error_message([&] { m[nullptr] = 2; }), HasSubstr("is empty"));
  EXPECT_THAT(m.values(), ElementsAre(1));
}

}  // namespace
