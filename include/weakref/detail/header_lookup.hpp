// weakref/detail/header_lookup.hpp — finding the object_header of a std::shared_ptr's control
// block: what std::get_deleter<object_header> answers, without its virtual call each time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>

#include "weakref/detail/object_header.hpp"
#include "weakref/detail/visibility.hpp"

namespace weakref::detail {

// get_deleter is a virtual call into the control block and a type_info comparison: a few
// nanoseconds on every insert, identity lookup and ref creation. The fast path reads the
// control block pointer out of the shared_ptr (the second of its two words in every standard
// library known; the first is get()) and compares the block's vtable pointer with that of the
// first block of the same pointee type where get_deleter found a header: same vtable, same
// type of control block, same place for the header. The header's offset from the block is
// learnt once from get_deleter's answer. Whatever does not match (another layout, another
// dynamic type behind a base-class pointer, an object not made by weakref::make_shared) takes
// get_deleter. The first word of a control block is its vtable pointer in the three standard
// libraries the fast path is enabled for (a control block is polymorphic in each); any other
// library always takes get_deleter.
#if defined(__GLIBCXX__) || defined(_LIBCPP_VERSION) || defined(_MSVC_STL_VERSION)
inline constexpr bool header_lookup_fast_path = true;
#else
inline constexpr bool header_lookup_fast_path = false;
#endif

struct header_lookup_cache {
  std::atomic<const void*> vtable{nullptr};  // the first block type seen with a header
  // From a control block to its object_header; 0 until learnt, then never changed.
  WEAKREF_PROCESS_WIDE static inline std::atomic<std::ptrdiff_t> offset{0};
};
template <class T>
WEAKREF_PROCESS_WIDE inline constinit header_lookup_cache header_lookup_cache_of{};

// The slow path of find_header: get_deleter, and learning the block type if it is the first
// with a header. `block` and `vtable` are p's control block and its vtable pointer, or null.
template <class T>
[[gnu::noinline]] object_header* find_header_by_deleter(const std::shared_ptr<T>& p,
                                                        const void* block,
                                                        const void* vtable) noexcept {
  auto& cache = header_lookup_cache_of<std::remove_cv_t<T>>;
  auto* header = std::get_deleter<object_header>(p);
  if (header && vtable && !cache.vtable.load(std::memory_order_relaxed)) {
    auto offset = reinterpret_cast<const std::byte*>(header) - static_cast<const std::byte*>(block);
    auto known = header_lookup_cache::offset.load(std::memory_order_relaxed);
    if (known == 0 && offset > 0 && offset < 64 * static_cast<std::ptrdiff_t>(sizeof(void*)) &&
        header_lookup_cache::offset.compare_exchange_strong(known, offset,
                                                            std::memory_order_relaxed)) {
      known = offset;
    }
    if (known == offset) {  // else this type of block keeps the slow path
      const void* expected = nullptr;
      cache.vtable.compare_exchange_strong(expected, vtable, std::memory_order_release);
    }
  }
  return header;
}

// std::get_deleter<object_header>(p): the header of `p`'s object if weakref::make_shared (or
// allocate_shared) made it, else null. The fast path inlines into every insert and lookup.
template <class T>
object_header* find_header(const std::shared_ptr<T>& p) noexcept {
  if constexpr (!header_lookup_fast_path || sizeof(p) != 2 * sizeof(void*)) {
    return std::get_deleter<object_header>(p);
  }
  const void* words[2];
  std::memcpy(static_cast<void*>(words), static_cast<const void*>(&p), sizeof(words));
  const void* vtable = nullptr;
  if (words[1] && words[0] == static_cast<const void*>(p.get())) {
    std::memcpy(static_cast<void*>(&vtable), words[1], sizeof(vtable));
    if (vtable ==
        header_lookup_cache_of<std::remove_cv_t<T>>.vtable.load(std::memory_order_acquire)) {
      auto* block = static_cast<const std::byte*>(words[1]);
      auto offset = header_lookup_cache::offset.load(std::memory_order_relaxed);
      return reinterpret_cast<object_header*>(const_cast<std::byte*>(block + offset));
    }
  }
  return find_header_by_deleter(p, words[1], vtable);
}

}  // namespace weakref::detail
