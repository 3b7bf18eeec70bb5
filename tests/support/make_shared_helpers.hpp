// support/make_shared_helpers.hpp — what the make_shared test files share (include dir: tests/):
// counting_allocator (an allocator whose stats two copies share), `tracked` (counts its
// destructions), base/derived, and `node` (enable_shared_from_this).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace make_shared_helpers {

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

struct node : std::enable_shared_from_this<node> {
  node() : expired_in_constructor(weak_from_this().expired()) {}
  bool expired_in_constructor;
};

}  // namespace make_shared_helpers
