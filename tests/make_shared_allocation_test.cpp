// Tests for the allocations of weakref/make_shared.hpp: make_shared makes exactly one allocation
// per object, at most 32 bytes larger than std::make_shared's; allocate_shared takes all memory
// from the allocator (stateful and polymorphic ones too) and frees it once the last weak
// reference goes; over-aligned types; a throwing constructor leaks nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#if __has_include(<memory_resource>)  // libc++ has it from 16 on (Debian 12's is 14)
#include <memory_resource>
#endif
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/make_shared_helpers.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"

// Global operator new/delete replaced with counters, to count the allocations make_shared
// does. ASan-compatible (checked with g++ and clang++ -fsanitize=address,undefined, LeakSanitizer
// still reports leaks): the program's definitions take precedence over the sanitizer's, they
// allocate with malloc/aligned_alloc/free, which ASan intercepts, and new and delete are
// replaced together, so no allocation/deallocation mismatch can arise. clang's static TSan/MSan
// runtimes define operator new strongly (duplicate symbols), so there the replacement is left
// out and only the assertions on global counts are skipped.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define WEAKREF_TEST_NO_NEW_REPLACEMENT 1
#endif
#endif

namespace {
#ifdef WEAKREF_TEST_NO_NEW_REPLACEMENT
constexpr bool counting_new = false;
#else
constexpr bool counting_new = true;
#endif
std::atomic<std::size_t> g_news{0};
std::atomic<std::size_t> g_deletes{0};
std::atomic<std::size_t> g_last_size{0};

[[maybe_unused]] void* counted_new(std::size_t size, std::size_t align) {
  if (size == 0) size = 1;
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(size)
                : std::aligned_alloc(align, (size + align - 1) / align * align);
  if (!p) throw std::bad_alloc();
  g_last_size.store(size, std::memory_order_relaxed);
  g_news.fetch_add(1, std::memory_order_relaxed);
  return p;
}
[[maybe_unused]] void counted_delete(void* p) noexcept {
  if (!p) return;
  g_deletes.fetch_add(1, std::memory_order_relaxed);
  std::free(p);
}
}  // namespace

#ifndef WEAKREF_TEST_NO_NEW_REPLACEMENT
void* operator new(std::size_t n) { return counted_new(n, 0); }
void* operator new[](std::size_t n) { return counted_new(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) {
  return counted_new(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted_new(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { counted_delete(p); }
void operator delete[](void* p) noexcept { counted_delete(p); }
void operator delete(void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_delete(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_delete(p); }
#endif

namespace {

using make_shared_helpers::alloc_stats;
using make_shared_helpers::base;
using make_shared_helpers::counting_allocator;
using make_shared_helpers::derived;
using make_shared_helpers::node;
using make_shared_helpers::tracked;

struct thrower {
  thrower() { throw std::runtime_error("constructor failed"); }
};

struct alignas(64) aligned64 {
  unsigned char bytes[64];
};
struct alignas(256) aligned256 {
  unsigned char bytes[8];
};

TEST(make_shared, makes_exactly_one_allocation_per_object) {
  if (!counting_new) GTEST_SKIP() << "operator new is not replaced in this build";
  auto count = [](auto make) {
    auto before = g_news.load();
    auto p = make();
    return g_news.load() - before;
  };
  EXPECT_EQ(count([] { return weakref::make_shared<int>(1); }), 1u);
  EXPECT_EQ(count([] { return weakref::make_shared<derived>(); }), 1u);
  EXPECT_EQ(count([] { return weakref::make_shared<node>(); }), 1u);
  EXPECT_EQ(count([] { return weakref::make_shared<aligned64>(); }), 1u);
  EXPECT_EQ(count([] { return weakref::make_shared<std::string>("short"); }), 1u);

  auto before_news = g_news.load();
  auto before_deletes = g_deletes.load();
  {
    auto p = weakref::make_shared<derived>();
    std::shared_ptr<base> b = p;
    std::weak_ptr<base> w = b;
  }
  EXPECT_EQ(g_news.load() - before_news, 1u);
  EXPECT_EQ(g_deletes.load() - before_deletes, 1u);
}

TEST(make_shared, block_is_at_most_32_bytes_larger_than_std_make_shared) {
  if (!counting_new) GTEST_SKIP() << "operator new is not replaced in this build";
  auto size_of_allocation = [](auto make) {
    auto before = g_news.load();
    auto p = make();
    EXPECT_EQ(g_news.load() - before, 1u);
    return g_last_size.load();
  };
  std::size_t ours = size_of_allocation([] { return weakref::make_shared<int>(1); });
  std::size_t theirs = size_of_allocation([] { return std::make_shared<int>(1); });
  std::cout << "bytes per make_shared<int>: weakref " << ours << ", std " << theirs << '\n';
  RecordProperty("weakref_make_shared_int_bytes", static_cast<int>(ours));
  RecordProperty("std_make_shared_int_bytes", static_cast<int>(theirs));
  EXPECT_LE(ours, theirs + 32);
}

TEST(allocate_shared, uses_the_allocator_for_all_memory_and_frees_it) {
  alloc_stats stats;
  int destroyed = 0;
  auto news = g_news.load();
  auto p = weakref::allocate_shared<tracked>(counting_allocator<tracked>(&stats), &destroyed);
  auto copy = p;
  std::weak_ptr<tracked> w = p;
  if (counting_new) {
    EXPECT_EQ(g_news.load(), news);  // nothing from the global heap
  }
  EXPECT_EQ(stats.allocations, 1u);
  auto addr = reinterpret_cast<std::uintptr_t>(p.get());
  EXPECT_GE(addr, stats.last_block);
  EXPECT_LE(addr + sizeof(tracked), stats.last_block + stats.last_bytes);

  p.reset();
  copy.reset();
  EXPECT_EQ(destroyed, 1);
  EXPECT_EQ(stats.deallocations, 0u);  // like std: the block stays while a weak_ptr does
  w.reset();
  EXPECT_EQ(stats.deallocations, 1u);
  EXPECT_EQ(stats.allocations, stats.deallocations);
}

TEST(allocate_shared, memory_stays_until_the_last_ref_goes) {
  alloc_stats stats;
  auto p = weakref::allocate_shared<int>(counting_allocator<int>(&stats), 3);
  auto r = std::make_unique<weakref::ref<int>>(p);
  p.reset();
  EXPECT_EQ(r->lock(), nullptr);
  EXPECT_EQ(stats.deallocations, 0u);
  r.reset();
  EXPECT_EQ(stats.allocations, 1u);
  EXPECT_EQ(stats.deallocations, 1u);
}

TEST(allocate_shared, stateful_allocators_keep_their_own_state) {
  alloc_stats first;
  alloc_stats second;
  auto a = weakref::allocate_shared<int>(counting_allocator<int>(&first), 1);
  auto b = weakref::allocate_shared<double>(counting_allocator<char>(&second), 2.5);
  auto c = weakref::allocate_shared<int>(counting_allocator<int>(&second), 3);
  EXPECT_EQ(first.allocations, 1u);
  EXPECT_EQ(second.allocations, 2u);
  EXPECT_EQ(*a + *c, 4);
  EXPECT_EQ(*b, 2.5);
  b.reset();
  EXPECT_EQ(first.deallocations, 0u);
  EXPECT_EQ(second.deallocations, 1u);
  a.reset();
  c.reset();
  EXPECT_EQ(first.deallocations, 1u);
  EXPECT_EQ(second.deallocations, 2u);
}

TEST(make_shared, over_aligned_types_are_correctly_aligned) {
  alloc_stats stats;
  std::vector<std::shared_ptr<void>> keep;
  for (int i = 0; i < 16; ++i) {
    auto a = weakref::make_shared<aligned64>();
    auto b = weakref::allocate_shared<aligned64>(counting_allocator<aligned64>(&stats));
    auto c = weakref::make_shared<aligned256>();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.get()) % 64, 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.get()) % 64, 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(c.get()) % 256, 0u);
    keep.insert(keep.end(), {a, b, c});
  }
  keep.clear();
  EXPECT_EQ(stats.allocations, 16u);
  EXPECT_EQ(stats.deallocations, 16u);
}

TEST(make_shared, a_throwing_constructor_propagates_and_leaks_nothing) {
  alloc_stats stats;
  EXPECT_THROW(weakref::allocate_shared<thrower>(counting_allocator<thrower>(&stats)),
               std::runtime_error);
  EXPECT_EQ(stats.allocations, 1u);
  EXPECT_EQ(stats.deallocations, 1u);

  auto news = g_news.load();
  auto deletes = g_deletes.load();
  bool caught = false;
  try {
    weakref::make_shared<thrower>();
  } catch (const std::runtime_error& e) {
    caught = std::string_view(e.what()) == "constructor failed";
  }
  EXPECT_TRUE(caught);
  if (counting_new) {
    EXPECT_GE(g_news.load() - news, 1u);  // the block (libstdc++ may also allocate the message)
    EXPECT_EQ(g_news.load() - news, g_deletes.load() - deletes);
  }
}

#if __has_include(<memory_resource>)
// A memory_resource that counts, on top of the default one.
struct counting_resource : std::pmr::memory_resource {
  std::size_t allocations = 0;
  std::size_t deallocations = 0;
  void* do_allocate(std::size_t bytes, std::size_t align) override {
    ++allocations;
    return std::pmr::new_delete_resource()->allocate(bytes, align);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t align) override {
    ++deallocations;
    std::pmr::new_delete_resource()->deallocate(p, bytes, align);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

struct named {
  using allocator_type = std::pmr::polymorphic_allocator<>;
  named(std::string_view n, const allocator_type& alloc) : name(n, alloc) {}
  std::pmr::string name;
};

TEST(allocate_shared, polymorphic_allocator_with_uses_allocator_construction) {
  counting_resource resource;
  const char* long_name = "a name far too long for the small string buffer";
  auto p = weakref::allocate_shared<named>(std::pmr::polymorphic_allocator<>(&resource), long_name);
  EXPECT_EQ(p->name, long_name);
  EXPECT_EQ(p->name.get_allocator().resource(), &resource);  // the allocator was passed on
  auto s = weakref::allocate_shared<std::pmr::string>(
      std::pmr::polymorphic_allocator<std::pmr::string>(&resource), long_name);
  EXPECT_EQ(s->get_allocator().resource(), &resource);
  EXPECT_EQ(resource.allocations, 4u);  // two blocks, two string buffers
  EXPECT_TRUE(weakref::is_weakrefable(p));
  p.reset();
  s.reset();
  EXPECT_EQ(resource.deallocations, 4u);
}
#endif

}  // namespace
