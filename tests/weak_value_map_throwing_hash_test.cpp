// Tests for a weakref::weak_value_map whose Hash or KeyEqual throws: every call that hashes or
// compares a key propagates the exception and leaves the map unchanged and usable.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/tracked.hpp"
#include "support/weak_value_map_helpers.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_value_map.hpp"

namespace {

using testing::ElementsAre;
using weak_value_map_helpers::weak_value_map;
using weakref::getweakrefcount;

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

}  // namespace
