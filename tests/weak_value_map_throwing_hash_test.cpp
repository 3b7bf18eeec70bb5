// Tests for a weakref::weak_value_map whose Hash, KeyEqual or key type throws: every call that
// hashes, compares or copies a key propagates the exception and leaves the map unchanged and
// usable (or, where documented, valid and empty).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/tracked.hpp"
#include "support/weak_value_map_helpers.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_set.hpp"
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

// A Hash whose copies (so moves, assignments and swaps) throw on demand; it hashes like
// flaky_hash when it does not.
struct hash_with_throwing_moves {
  explicit hash_with_throwing_moves(const bool* fail_copy) : fail(fail_copy) {}
  hash_with_throwing_moves(const hash_with_throwing_moves& other) : fail(other.fail) {
    if (*fail) throw std::runtime_error("hash copy failed");
  }
  hash_with_throwing_moves& operator=(const hash_with_throwing_moves& other) {
    if (*other.fail) throw std::runtime_error("hash copy failed");
    fail = other.fail;
    return *this;
  }
  ~hash_with_throwing_moves() = default;
  std::size_t operator()(int key) const { return static_cast<std::size_t>(key % 2); }
  const bool* fail;
};
using moving_map = weakref::weak_value_map<int, tracked, hash_with_throwing_moves>;

// noexcept is truthful: moves and swaps are noexcept exactly when the functors' are.
static_assert(std::is_nothrow_move_constructible_v<flaky_map>);
static_assert(std::is_nothrow_move_assignable_v<flaky_map>);
static_assert(std::is_nothrow_swappable_v<flaky_map>);
static_assert(!std::is_nothrow_move_constructible_v<moving_map>);
static_assert(!std::is_nothrow_move_assignable_v<moving_map>);
static_assert(!std::is_nothrow_swappable_v<moving_map>);
static_assert(std::is_nothrow_move_constructible_v<weakref::weak_key_map<tracked, int>>);
static_assert(std::is_nothrow_move_assignable_v<weakref::weak_key_map<tracked, int>>);
static_assert(std::is_nothrow_swappable_v<weakref::weak_key_map<tracked, int>>);
static_assert(std::is_nothrow_move_constructible_v<weakref::weak_set<tracked>>);
static_assert(std::is_nothrow_move_assignable_v<weakref::weak_set<tracked>>);
static_assert(std::is_nothrow_swappable_v<weakref::weak_set<tracked>>);

// If a functor's move or swap throws, the exception propagates (it was std::terminate under a
// noexcept that did not hold) and the maps involved are empty and usable.
TEST_F(weak_value_map, a_hash_whose_moves_throw_makes_moves_and_swaps_throw_and_empty) {
  bool fail = false;
  auto a = make("a"), b = make("b");
  auto fill = [&](moving_map& m) {
    m.insert_or_assign(1, a);
    m.insert_or_assign(2, b);
  };
  auto usable = [&](moving_map& m) {
    fail = false;
    EXPECT_TRUE(m.empty());
    m.insert_or_assign(3, a);
    m.insert_or_assign(5, b);  // collides with 3: KeyEqual runs
    EXPECT_EQ(m.get(3), a);
    EXPECT_EQ(m.get(5), b);
    EXPECT_EQ(m.get(1), nullptr);
  };
  moving_map m1(hash_with_throwing_moves{&fail}), m2(hash_with_throwing_moves{&fail});
  fill(m1);
  fill(m2);
  fail = true;
  EXPECT_THROW(moving_map moved(std::move(m1)), std::runtime_error);
  usable(m1);
  fill(m1);
  fail = true;
  EXPECT_THROW(m2 = std::move(m1), std::runtime_error);
  usable(m1);
  usable(m2);
  fill(m1);
  fill(m2);
  fail = true;
  EXPECT_THROW(m1.swap(m2), std::runtime_error);
  usable(m1);
  usable(m2);
  EXPECT_EQ(getweakrefcount(a), 2u);  // nothing left behind: one entry in each map
  moving_map m3 = std::move(m1);      // and with the functors working, moves work
  EXPECT_EQ(m3.get(3), a);
  m2.swap(m3);
  EXPECT_EQ(m2.get(3), a);
}

// Copy assignment copies the source, then swaps: a throwing copy leaves the target unchanged
// (strong guarantee); a functor swap that throws after it leaves the target valid but empty, as
// documented, and the source untouched.
struct hash_with_throwing_assignment {
  std::size_t operator()(int key) const { return static_cast<std::size_t>(key % 2); }
  hash_with_throwing_assignment& operator=(const hash_with_throwing_assignment& other) {
    if (*other.fail) throw std::runtime_error("hash assignment failed");
    fail = other.fail;
    return *this;
  }
  hash_with_throwing_assignment(const hash_with_throwing_assignment&) = default;
  explicit hash_with_throwing_assignment(const bool* fail_assignment) : fail(fail_assignment) {}
  ~hash_with_throwing_assignment() = default;
  const bool* fail;
};

TEST_F(weak_value_map, copy_assignment_is_strong_unless_swapping_a_functor_throws) {
  auto a = make("a"), b = make("b");
  bool fail_copy = false;
  moving_map source(hash_with_throwing_moves{&fail_copy}),
      target(hash_with_throwing_moves{&fail_copy});
  source.insert_or_assign(1, a);
  target.insert_or_assign(2, b);
  fail_copy = true;
  EXPECT_THROW(target = source, std::runtime_error);
  fail_copy = false;
  EXPECT_EQ(target.size(), 1u);
  EXPECT_EQ(target.get(2), b);
  EXPECT_EQ(target.get(1), nullptr);
  EXPECT_EQ(getweakrefcount(a), 1u);  // the failed copy left no entry behind

  using assigning_map = weakref::weak_value_map<int, tracked, hash_with_throwing_assignment>;
  bool fail_assignment = false;
  assigning_map from(hash_with_throwing_assignment{&fail_assignment});
  assigning_map to(hash_with_throwing_assignment{&fail_assignment});
  from.insert_or_assign(1, a);
  to.insert_or_assign(2, b);
  fail_assignment = true;
  EXPECT_THROW(to = from, std::runtime_error);
  fail_assignment = false;
  EXPECT_TRUE(to.empty());
  EXPECT_EQ(from.get(1), a);
  to.insert_or_assign(3, a);
  to.insert_or_assign(5, b);  // collides with 3
  EXPECT_EQ(to.get(3), a);
  EXPECT_EQ(to.get(5), b);
  to = from;
  EXPECT_EQ(to.get(1), a);
  EXPECT_EQ(to.size(), 1u);
}

// A key whose moves throw on demand (copies do not, unless told to).
struct key_with_throwing_moves {
  static inline bool fail_moves = false;
  static inline bool fail_copies = false;
  explicit key_with_throwing_moves(std::string text) : s(std::move(text)) {}
  key_with_throwing_moves(const key_with_throwing_moves& other) : s(other.s) {
    if (fail_copies) throw std::runtime_error("key copy failed");
  }
  key_with_throwing_moves(key_with_throwing_moves&& other) {
    if (fail_moves) throw std::runtime_error("key move failed");
    s = std::move(other.s);
  }
  key_with_throwing_moves& operator=(const key_with_throwing_moves&) = delete;
  ~key_with_throwing_moves() = default;
  bool operator==(const key_with_throwing_moves&) const = default;
  std::string s;
};
struct hash_of_key_with_throwing_moves {
  std::size_t operator()(const key_with_throwing_moves& key) const {
    return std::hash<std::string>{}(key.s);
  }
};

// A present key that gets a new value (or whose dead value is replaced) moves into a new entry;
// a key whose move may throw is copied instead, so the entry's key is never lost to a move that
// threw midway, and a copy that throws leaves the map unchanged.
TEST_F(weak_value_map, a_present_key_whose_moves_throw_keeps_its_entry) {
  using map =
      weakref::weak_value_map<key_with_throwing_moves, tracked, hash_of_key_with_throwing_moves>;
  const std::string name = "a key long enough to be on the heap";
  auto key = [&] { return key_with_throwing_moves(name); };
  auto a = make("a"), b = make("b");
  map m;
  m.insert_or_assign(key(), a);
  key_with_throwing_moves::fail_moves = true;
  m.insert_or_assign(key(), b);  // copied, not moved
  EXPECT_EQ(m.get(key()), b);

  key_with_throwing_moves::fail_copies = true;
  EXPECT_THROW(m.insert_or_assign(key(), a), std::runtime_error);
  EXPECT_THROW(m.insert_or_assign(key(), a), std::runtime_error);  // twice: nothing half-done
  key_with_throwing_moves::fail_copies = false;
  key_with_throwing_moves::fail_moves = false;
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m.begin()->first.s, name);
  EXPECT_EQ(m.get(key()), b);
  EXPECT_EQ(getweakrefcount(a), 0u);  // no node on `a` was left behind

  b.reset();  // the entry's value is dead: try_emplace replaces it
  key_with_throwing_moves::fail_moves = true;
  EXPECT_TRUE(m.try_emplace(key(), a).second);
  key_with_throwing_moves::fail_moves = false;
  EXPECT_EQ(m.begin()->first.s, name);
  EXPECT_EQ(m.get(key()), a);
}

}  // namespace
