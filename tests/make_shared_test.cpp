// Tests for weakref/make_shared.hpp: make_shared and allocate_shared return ordinary
// std::shared_ptrs made in one allocation, and is_weakrefable tells which pointers qualify.
#include "weakref/make_shared.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

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

// Allocations seen by a counting_allocator (its state: two allocators are equal when they
// share the stats).
struct alloc_stats {
  std::size_t allocations = 0;
  std::size_t deallocations = 0;
  std::uintptr_t last_block = 0;
  std::size_t last_bytes = 0;
};

// Allocates with malloc/aligned_alloc (not operator new), so global counters don't see it.
template <class T>
struct counting_allocator {
  using value_type = T;
  explicit counting_allocator(alloc_stats* s) noexcept : stats(s) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& other) noexcept : stats(other.stats) {}

  T* allocate(std::size_t n) {
    constexpr std::size_t align = alignof(T) < sizeof(void*) ? sizeof(void*) : alignof(T);
    std::size_t bytes = (n * sizeof(T) + align - 1) / align * align;  // as aligned_alloc wants
    void* p = std::aligned_alloc(align, bytes);
    if (!p) throw std::bad_alloc();
    ++stats->allocations;
    stats->last_block = reinterpret_cast<std::uintptr_t>(p);
    stats->last_bytes = bytes;
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept {
    ++stats->deallocations;
    std::free(p);
  }
  template <class U>
  friend bool operator==(const counting_allocator& a, const counting_allocator<U>& b) noexcept {
    return a.stats == b.stats;
  }

  alloc_stats* stats;
};

struct tracked {
  explicit tracked(int* destroyed) : destroyed_(destroyed) {}
  tracked(const tracked&) = delete;
  ~tracked() { ++*destroyed_; }
  int* destroyed_;
};

struct base {
  virtual ~base() = default;
  int b = 1;
};
struct derived : base {
  int d = 2;
};

struct thrower {
  thrower() { throw std::runtime_error("constructor failed"); }
};

struct alignas(64) aligned64 {
  unsigned char bytes[64];
};
struct alignas(256) aligned256 {
  unsigned char bytes[8];
};

struct node : std::enable_shared_from_this<node> {
  node() : expired_in_constructor(weak_from_this().expired()) {}
  bool expired_in_constructor;
};
struct esft_base : std::enable_shared_from_this<esft_base> {
  virtual ~esft_base() = default;
};
struct esft_derived : esft_base {
  int value = 5;
};

bool same_owner(const auto& a, const auto& b) { return !a.owner_before(b) && !b.owner_before(a); }

TEST(make_shared, returns_a_plain_shared_ptr_that_behaves_like_std) {
  static_assert(std::is_same_v<decltype(weakref::make_shared<int>(1)), std::shared_ptr<int>>);
  auto p = weakref::make_shared<derived>();
  EXPECT_EQ(p.use_count(), 1);
  auto copy = p;
  EXPECT_EQ(p.use_count(), 2);
  std::shared_ptr<base> as_base = p;
  EXPECT_EQ(p.use_count(), 3);
  EXPECT_EQ(as_base.get(), static_cast<base*>(p.get()));
  std::shared_ptr<int> member(p, &p->d);
  EXPECT_EQ(*member, 2);
  EXPECT_EQ(p.use_count(), 4);
  EXPECT_TRUE(same_owner(member, p));
  EXPECT_TRUE(same_owner(as_base, copy));
  auto other = weakref::make_shared<derived>();
  EXPECT_FALSE(same_owner(other, p));
  EXPECT_NE(p.owner_before(other), other.owner_before(p));

  std::weak_ptr<derived> w = p;
  EXPECT_EQ(p.use_count(), 4);  // weak_ptr does not own
  p.reset();
  copy.reset();
  as_base.reset();
  EXPECT_FALSE(w.expired());
  EXPECT_EQ(w.lock()->d, 2);
  member.reset();
  EXPECT_TRUE(w.expired());
  EXPECT_EQ(w.lock(), nullptr);
}

TEST(make_shared, forwards_constructor_arguments) {
  auto s = weakref::make_shared<std::string>(3, 'x');
  EXPECT_EQ(*s, "xxx");
  auto v = weakref::make_shared<std::vector<int>>(std::vector<int>{1, 2, 3});
  EXPECT_EQ(v->size(), 3u);
}

TEST(make_shared, enable_shared_from_this_works) {
  auto p = weakref::make_shared<node>();
  EXPECT_TRUE(p->expired_in_constructor);  // as with std::make_shared
  auto again = p->shared_from_this();
  EXPECT_EQ(again, p);
  EXPECT_EQ(p.use_count(), 2);
  EXPECT_TRUE(weakref::is_weakrefable(again));
  EXPECT_TRUE(weakref::ref<node>(again) == weakref::ref<node>(p));
  std::weak_ptr<node> w = p->weak_from_this();
  EXPECT_EQ(w.lock(), p);
  p.reset();
  again.reset();
  EXPECT_TRUE(w.expired());

  auto q = weakref::allocate_shared<node>(std::allocator<node>());
  EXPECT_EQ(q->shared_from_this(), q);
}

TEST(make_shared, enable_shared_from_this_from_a_base_class) {
  auto d = weakref::make_shared<esft_derived>();
  std::shared_ptr<esft_base> b = d->shared_from_this();
  EXPECT_EQ(b.get(), static_cast<esft_base*>(d.get()));
  EXPECT_EQ(d.use_count(), 2);
  EXPECT_TRUE(weakref::is_weakrefable(b));
  weakref::ref<esft_base> r(b);
  EXPECT_EQ(r.lock(), b);
  EXPECT_EQ(d->weak_from_this().lock(), b);
}

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

TEST(make_shared, destructor_runs_once_when_the_last_owner_goes) {
  int destroyed = 0;
  auto p = weakref::make_shared<tracked>(&destroyed);
  auto copy = p;
  std::shared_ptr<void> erased = p;
  weakref::ref<tracked> r(p);
  std::weak_ptr<tracked> w = p;
  p.reset();
  copy.reset();
  EXPECT_EQ(destroyed, 0);
  erased.reset();
  EXPECT_EQ(destroyed, 1);
  r = weakref::ref<tracked>();
  w.reset();
  EXPECT_EQ(destroyed, 1);
}

TEST(is_weakrefable, true_for_any_pointer_sharing_a_weakref_made_owner) {
  auto p = weakref::make_shared<derived>();
  static_assert(noexcept(weakref::is_weakrefable(p)));
  EXPECT_TRUE(weakref::is_weakrefable(p));
  EXPECT_TRUE(weakref::is_weakrefable(std::shared_ptr<base>(p)));
  EXPECT_TRUE(weakref::is_weakrefable(std::shared_ptr<int>(p, &p->d)));
  EXPECT_TRUE(weakref::is_weakrefable(std::shared_ptr<void>(p)));
  EXPECT_TRUE(weakref::is_weakrefable(std::shared_ptr<const void>(p)));
  alloc_stats stats;
  EXPECT_TRUE(
      weakref::is_weakrefable(weakref::allocate_shared<int>(counting_allocator<int>(&stats))));
}

TEST(is_weakrefable, false_for_std_empty_and_new_owned_pointers) {
  auto s = std::make_shared<derived>();
  EXPECT_FALSE(weakref::is_weakrefable(s));
  EXPECT_FALSE(weakref::is_weakrefable(std::shared_ptr<int>(s, &s->d)));
  EXPECT_FALSE(weakref::is_weakrefable(std::shared_ptr<derived>()));
  EXPECT_FALSE(weakref::is_weakrefable(std::shared_ptr<derived>(new derived)));
  EXPECT_FALSE(weakref::is_weakrefable(std::allocate_shared<int>(std::allocator<int>(), 1)));
}

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

}  // namespace
