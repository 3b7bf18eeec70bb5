// Filling a weak container must take amortized O(1) heap traffic per entry: a growth policy
// that reallocates its storage on every insert makes filling quadratic (n = 1,000,000 took
// minutes). Counts the bytes requested from the global operator new while n entries go in.
// Also pins that an entry is one small allocation: glibc serves requests of up to 120 bytes
// from its fast bins, and a 144-byte node made inserts twice as slow; and the containers'
// index on its own (detail/table_index.hpp): its load factor, and that deleting from a probe
// run that wraps around the end keeps every other member reachable.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "weakref/detail/table_index.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_set.hpp"
#include "weakref/weak_value_map.hpp"

namespace {
bool g_counting = false;
std::size_t g_requested = 0;
std::vector<std::size_t>* g_sizes = nullptr;  // every request's size, while set
std::vector<void*>* g_addresses = nullptr;    // and the address given, while set too
}  // namespace

// noinline: inlined into callers, GCC 12 reports free() as -Wmismatched-new-delete.
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (g_counting) g_requested += n;
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  if (g_sizes && g_counting) {
    g_counting = false;  // push_back allocates too
    g_sizes->push_back(n);
    if (g_addresses) g_addresses->push_back(p);
    g_counting = true;
  }
  return p;
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

constexpr std::size_t n = 20000;
// A node per entry plus geometric growth of the table's arrays is a few hundred bytes; an
// array reallocated on every insert requests ~4 * n bytes per entry on average.
constexpr std::size_t max_bytes_per_entry = 1024;

std::vector<std::shared_ptr<int>> objects() {
  std::vector<std::shared_ptr<int>> objs;
  for (std::size_t i = 0; i < n; ++i)
    objs.push_back(weakref::make_shared<int>(static_cast<int>(i)));
  return objs;
}

template <class Container, class Add>
std::size_t requested_bytes_per_entry(Add add) {
  Container c;
  g_requested = 0;
  g_counting = true;
  for (std::size_t i = 0; i < n; ++i) add(c, i);
  g_counting = false;
  EXPECT_EQ(c.size(), n);
  return g_requested / n;
}

TEST(weak_containers_growth, weak_set_fill_requests_amortized_constant_bytes_per_entry) {
  auto objs = objects();
  EXPECT_LE(requested_bytes_per_entry<weakref::weak_set<int>>(
                [&](auto& c, std::size_t i) { c.insert(objs[i]); }),
            max_bytes_per_entry);
}

TEST(weak_containers_growth, weak_value_map_fill_requests_amortized_constant_bytes_per_entry) {
  auto objs = objects();
  using map = weakref::weak_value_map<std::size_t, int>;
  EXPECT_LE(
      requested_bytes_per_entry<map>([&](auto& c, std::size_t i) { c.try_emplace(i, objs[i]); }),
      max_bytes_per_entry);
}

TEST(weak_containers_growth, weak_key_map_fill_requests_amortized_constant_bytes_per_entry) {
  auto objs = objects();
  using map = weakref::weak_key_map<int, std::size_t>;
  EXPECT_LE(
      requested_bytes_per_entry<map>([&](auto& c, std::size_t i) { c.try_emplace(objs[i], i); }),
      max_bytes_per_entry);
}

// The sizes of the allocations made by adding one entry to a container that already has a
// few (so its arrays have room).
template <class Container, class Add>
std::vector<std::size_t> allocations_of_one_entry(Add add) {
  Container c;
  for (std::size_t i = 0; i < 3; ++i) add(c, i);
  std::vector<std::size_t> sizes;
  sizes.reserve(16);
  g_sizes = &sizes;
  g_counting = true;
  add(c, 3);
  g_counting = false;
  g_sizes = nullptr;
  return sizes;
}

// 104 bytes on the Itanium C++ ABI (GCC and Clang on Linux) with 64-bit pointers; others lay
// the node out differently, and only the count is checked there.
#if defined(__GLIBCXX__) && defined(__LP64__)
constexpr std::size_t max_entry_bytes = 104;
#else
constexpr std::size_t max_entry_bytes = static_cast<std::size_t>(-1);
#endif

TEST(weak_containers_growth, an_entry_is_one_allocation_that_fits_a_malloc_fast_bin) {
  auto objs = objects();
  auto value_map = allocations_of_one_entry<weakref::weak_value_map<int, int>>(
      [&](auto& c, std::size_t i) { c.try_emplace(static_cast<int>(i), objs[i]); });
  auto key_map = allocations_of_one_entry<weakref::weak_key_map<int, std::size_t>>(
      [&](auto& c, std::size_t i) { c.try_emplace(objs[i], i); });
  auto set = allocations_of_one_entry<weakref::weak_set<int>>(
      [&](auto& c, std::size_t i) { c.add(objs[i]); });
  for (const auto* sizes : {&value_map, &key_map, &set}) {
    ASSERT_EQ(sizes->size(), 1u);
    EXPECT_LE(sizes->front(), max_entry_bytes);
  }
}

// A lookup reads the entry's weak reference (which ends the node's weak_ptr part) and then its
// key: the key comes right after it, at byte 64, so that the two share a cache line as often
// as malloc's alignment allows (it was at byte 88, 72 bytes after the weak_ptr: always two).
TEST(weak_containers_growth, an_entrys_key_follows_its_weak_reference) {
  auto objs = objects();
  weakref::weak_value_map<int, int> c;
  for (int i = 0; i < 3; ++i) c.try_emplace(i, objs[static_cast<std::size_t>(i)]);
  std::vector<std::size_t> sizes;
  std::vector<void*> addresses;
  g_sizes = &sizes;
  g_addresses = &addresses;
  g_counting = true;
  auto [it, added] = c.try_emplace(3, objs[3]);
  g_counting = false;
  g_sizes = nullptr;
  g_addresses = nullptr;
  ASSERT_TRUE(added);
  ASSERT_EQ(addresses.size(), 1u);
  auto offset = reinterpret_cast<const std::byte*>(&it->first) -
                static_cast<const std::byte*>(addresses.front());
  EXPECT_EQ(offset, max_entry_bytes == 104 ? 64 : offset);
  EXPECT_LT(static_cast<std::size_t>(offset), sizes.front());
}

// A node for the index alone: its hash picks the home slot (bits 32 and up).
struct index_node {
  std::uint64_t hash;
};
std::uint64_t hash_at_home(std::uint64_t home, std::uint64_t low) { return home << 32 | low; }

TEST(weak_containers_growth, index_holds_three_quarters_and_backward_shift_keeps_runs_reachable) {
  weakref::detail::table_index<index_node> index;
  EXPECT_FALSE(index.has_room(1));
  index.grow(1);  // 8 slots
  EXPECT_TRUE(index.has_room(6));
  EXPECT_FALSE(index.has_room(7));
  // One probe run from slot 6 around to slot 2: a (home 6), b (6), c (7), d (6), e (0).
  index_node a{hash_at_home(6, 1)}, b{hash_at_home(6, 2)}, c{hash_at_home(7, 3)},
      d{hash_at_home(6, 4)}, e{hash_at_home(0, 5)};
  for (auto* n : {&a, &b, &c, &d, &e}) index.insert(n);
  auto find = [&](const index_node& n) {
    return index.find(n.hash, [&](const index_node& m) { return &m == &n; });
  };
  index.erase(&b);  // c, d and e shift back, over the end
  EXPECT_EQ(find(b), nullptr);
  for (const auto* n : {&a, &c, &d, &e}) EXPECT_EQ(find(*n), n);
  index.erase(&a);
  index.erase(&e);
  EXPECT_EQ(find(a), nullptr);
  EXPECT_EQ(find(e), nullptr);
  EXPECT_EQ(find(c), &c);
  EXPECT_EQ(find(d), &d);
}

// Growing refiles from the slots (each keeps its node's hash), so every node stays findable;
// and a probe asks `same` only about nodes whose whole hash is the one looked for.
TEST(weak_containers_growth, index_grows_from_its_slots_and_compares_hashes_before_nodes) {
  weakref::detail::table_index<index_node> index;
  std::vector<index_node> nodes;
  for (std::uint64_t i = 0; i < 40; ++i) nodes.push_back({hash_at_home(i % 5, i)});  // runs
  nodes.push_back({nodes[7].hash});  // a second node with nodes[7]'s whole hash
  for (auto& n : nodes) {
    if (!index.has_room(&n - nodes.data() + 1)) index.grow(&n - nodes.data() + 1);
    index.insert(&n);
  }
  for (auto& n : nodes) {
    int asked = 0;
    auto* found = index.find(n.hash, [&](const index_node& m) {
      ++asked;
      EXPECT_EQ(m.hash, n.hash);
      return &m == &n;
    });
    EXPECT_EQ(found, &n);
    EXPECT_LE(asked, n.hash == nodes[7].hash ? 2 : 1);
  }
}

}  // namespace
