// Tests for weakref/make_shared.hpp: make_shared returns an ordinary std::shared_ptr (ownership,
// aliasing, weak_ptr, enable_shared_from_this, one destruction), and is_weakrefable tells which
// pointers qualify. Also: make_shared_allocation_test.cpp (allocations and allocators).
#include "weakref/make_shared.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/make_shared_helpers.hpp"
#include "weakref/ref.hpp"

namespace {

using make_shared_helpers::alloc_stats;
using make_shared_helpers::base;
using make_shared_helpers::counting_allocator;
using make_shared_helpers::derived;
using make_shared_helpers::node;
using make_shared_helpers::tracked;

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

// As std::make_shared<const T>: the object is built and destroyed as T, once; weak references
// and callbacks work on the const pointer; the allocator is rebound to T (std::allocator<const
// T> is ill-formed), and all memory comes from it.
TEST(make_shared, makes_const_objects_as_std_make_shared_does) {
  static_assert(
      std::is_same_v<decltype(weakref::make_shared<const int>(1)), std::shared_ptr<const int>>);
  int destroyed = 0;
  auto p = weakref::make_shared<const tracked>(&destroyed);
  EXPECT_TRUE(weakref::is_weakrefable(p));
  int calls = 0;
  weakref::ref<const tracked> r(p, [&] { ++calls; });
  EXPECT_EQ(r.lock(), p);
  p.reset();
  EXPECT_EQ(destroyed, 1);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r.lock(), nullptr);

  alloc_stats stats;
  {
    auto q = weakref::allocate_shared<const int>(counting_allocator<char>(&stats), 7);
    EXPECT_EQ(*q, 7);
    EXPECT_EQ(stats.allocations, 1u);
  }
  EXPECT_EQ(stats.deallocations, 1u);
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

// The header is found without get_deleter's virtual call once a control block of the same
// type was seen (detail/header_lookup.hpp): every shape of pointer must get the same answer on
// the fast path as on the first, slow one, and the header found must be the object's own.
struct other_derived : base {
  int o = 3;
};
TEST(is_weakrefable, answers_alike_on_the_first_and_every_later_call) {
  auto d = weakref::make_shared<derived>();
  auto o = weakref::make_shared<other_derived>();  // another type of control block
  auto plain = std::make_shared<derived>();
  std::vector<std::pair<std::shared_ptr<base>, bool>> cases = {
      {d, true},
      {o, true},
      {plain, false},
      {std::shared_ptr<base>(d, nullptr), true},       // shares d's ownership, points nowhere
      {std::shared_ptr<base>(plain, d.get()), false},  // points at d, owned by plain
      {std::shared_ptr<base>(), false},
      {std::shared_ptr<base>(new derived), false},
  };
  for (int pass = 0; pass < 3; ++pass) {
    for (const auto& [p, weakrefable] : cases) {
      EXPECT_EQ(weakref::is_weakrefable(p), weakrefable) << "pass " << pass;
    }
    std::shared_ptr<base> via_base = d;
    weakref::ref<base> r(via_base, [] {});
    EXPECT_EQ(weakref::getweakrefcount(d), 1u);  // found d's header, not another's
    EXPECT_EQ(weakref::getweakrefcount(o), 0u);
    EXPECT_EQ(r.lock(), via_base);
  }
}

// The first lookups of a type's header race to fill its cache: threads that start together on
// objects of a type nobody looked up yet must each find their own object's header
// (ThreadSanitizer: the cache is atomic).
struct first_seen_here {
  explicit first_seen_here(int i) : id(i) {}
  int id;
};
TEST(is_weakrefable, first_lookups_of_a_type_on_several_threads_at_once) {
  constexpr int threads = 4;
  std::vector<std::shared_ptr<first_seen_here>> objects;
  for (int i = 0; i < threads; ++i) objects.push_back(weakref::make_shared<first_seen_here>(i));
  std::atomic<int> ready{0};
  std::vector<std::thread> workers;
  std::vector<int> found(threads, -1);
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < threads) {
      }
      const auto& mine = objects[static_cast<std::size_t>(i)];
      if (!weakref::is_weakrefable(mine)) return;
      weakref::ref<first_seen_here> r(mine, [] {});
      found[static_cast<std::size_t>(i)] = weakref::getweakrefcount(mine) == 1 ? r.lock()->id : -1;
    });
  }
  for (auto& w : workers) w.join();
  for (int i = 0; i < threads; ++i) EXPECT_EQ(found[static_cast<std::size_t>(i)], i);
}

// An allocator whose destroy() counts, and whose copies are counted through `token` (so the
// copy the block keeps for destroy() is seen to go). Allocates with std::allocator.
template <class T>
struct destroying_allocator {
  using value_type = T;
  destroying_allocator(int* destroyed, std::shared_ptr<int> copies) noexcept
      : destroys(destroyed), token(std::move(copies)) {}
  template <class U>
  destroying_allocator(const destroying_allocator<U>& other) noexcept
      : destroys(other.destroys), token(other.token) {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  template <class U>
  void destroy(U* p) {
    ++*destroys;
    p->~U();
  }
  template <class U>
  friend bool operator==(const destroying_allocator& a, const destroying_allocator<U>& b) {
    return a.destroys == b.destroys;
  }
  int* destroys;
  std::shared_ptr<int> token;
};

struct alignas(64) over_aligned_tracked : tracked {
  using tracked::tracked;
};
// Its end is not aligned for the hook that follows it in the block.
struct odd_sized_tracked : tracked {
  using tracked::tracked;
  char tail[3] = {};
};
#pragma pack(push, 1)
struct packed_tracked : tracked {
  using tracked::tracked;
  char tail[5] = {};
};
#pragma pack(pop)

// As std::allocate_shared: the object is destroyed with allocator_traits<A>::destroy, A being
// the allocator rebound to T, after the callbacks; the allocator copy kept for it goes too.
template <class T>
void expect_destroyed_through_the_allocator() {
  int destroys = 0;
  int destructions = 0;
  auto copies = std::make_shared<int>(0);
  {
    destroying_allocator<char> alloc(&destroys, copies);
    auto obj = weakref::allocate_shared<T>(alloc, &destructions);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(obj.get()) % alignof(T), 0u);
    int destroys_at_callback = -1;
    weakref::ref<T> r(obj, [&] { destroys_at_callback = destroys; });
    EXPECT_EQ(destroys, 0);
    obj.reset();
    EXPECT_EQ(destroys_at_callback, 0);  // callbacks first
    EXPECT_EQ(destroys, 1);
    EXPECT_EQ(destructions, 1);
  }
  EXPECT_EQ(copies.use_count(), 1);  // every allocator copy is gone, the block's included
}

TEST(make_shared, allocate_shared_destroys_with_the_allocators_destroy) {
  expect_destroyed_through_the_allocator<tracked>();
  expect_destroyed_through_the_allocator<over_aligned_tracked>();
  expect_destroyed_through_the_allocator<odd_sized_tracked>();
  expect_destroyed_through_the_allocator<packed_tracked>();
  expect_destroyed_through_the_allocator<const tracked>();
}

// A pointer that is a class (a "fancy pointer", as Boost.Interprocess's offset_ptr), with the
// operations std::allocator_traits and std::pointer_traits need.
template <class T>
struct fancy_pointer {
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using difference_type = std::ptrdiff_t;
  using reference = T&;
  using iterator_category = std::random_access_iterator_tag;
  fancy_pointer() = default;
  fancy_pointer(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor)
  explicit fancy_pointer(T* address) noexcept : p(address) {}
  template <class U>
  fancy_pointer(const fancy_pointer<U>& other) noexcept : p(other.p) {}  // NOLINT
  static fancy_pointer pointer_to(T& r) noexcept { return fancy_pointer(&r); }
  T* operator->() const noexcept { return p; }
  T& operator*() const noexcept { return *p; }
  explicit operator bool() const noexcept { return p != nullptr; }
  friend bool operator==(const fancy_pointer&, const fancy_pointer&) = default;
  T* p = nullptr;
};
// Allocates with std::allocator and counts, handing out fancy pointers.
template <class T>
struct fancy_allocator {
  using value_type = T;
  using pointer = fancy_pointer<T>;
  explicit fancy_allocator(alloc_stats* s) noexcept : stats(s) {}
  template <class U>
  fancy_allocator(const fancy_allocator<U>& other) noexcept : stats(other.stats) {}  // NOLINT
  pointer allocate(std::size_t n) {
    ++stats->allocations;
    return pointer(std::allocator<T>().allocate(n));
  }
  void deallocate(pointer p, std::size_t n) noexcept {
    ++stats->deallocations;
    std::allocator<T>().deallocate(p.p, n);
  }
  template <class U>
  friend bool operator==(const fancy_allocator& a, const fancy_allocator<U>& b) noexcept {
    return a.stats == b.stats;
  }
  alloc_stats* stats;
};

// As std::allocate_shared, an allocator whose pointer type is a class works: the object is
// made in its one allocation, given back once the last weak reference goes.
TEST(make_shared, allocate_shared_takes_an_allocator_with_fancy_pointers) {
  alloc_stats stats;
  auto p = weakref::allocate_shared<std::string>(fancy_allocator<char>(&stats), "fancy");
  EXPECT_EQ(*p, "fancy");
  EXPECT_TRUE(weakref::is_weakrefable(p));
  weakref::ref<std::string> r(p);
  EXPECT_EQ(stats.allocations, 1u);
  p.reset();
  EXPECT_EQ(r(), nullptr);
  EXPECT_EQ(stats.deallocations, 0u);  // the ref keeps the block
  r = weakref::ref<std::string>();
  EXPECT_EQ(stats.deallocations, 1u);

  struct throws_on_construction {
    throws_on_construction() { throw std::runtime_error("no"); }
  };
  EXPECT_THROW(weakref::allocate_shared<throws_on_construction>(fancy_allocator<char>(&stats)),
               std::runtime_error);
  EXPECT_EQ(stats.allocations, 2u);
  EXPECT_EQ(stats.deallocations, 2u);  // given back through the fancy pointer
}

}  // namespace
