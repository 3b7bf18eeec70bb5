// weakref/detail/block_allocator.hpp — one allocation per object: the control block that
// std::shared_ptr creates for (pointer, object_header, allocator) and the object itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

#include "weakref/detail/gc_visitor.hpp"
#include "weakref/detail/object_header.hpp"

namespace weakref::detail {

// The object is constructed before std::shared_ptr sees it (so shared_ptr's constructor can
// wire enable_shared_from_this), which means the block must exist first. So weakref::make_shared
// allocates [control block | object] itself and hands the front part to std::shared_ptr
// through this allocator, whose allocate() returns it instead of allocating.
template <class T>
inline constexpr std::size_t block_alignment = alignof(T) > alignof(std::max_align_t)
                                                   ? alignof(T)
                                                   : alignof(std::max_align_t);

// The allocation unit: blocks are arrays of these, so the user's allocator aligns them.
template <class T>
struct alignas(block_alignment<T>) block_unit {
  std::byte bytes[block_alignment<T>];
};

// An allocator whose destroy() does more than ~T (std::allocator_traits<Alloc>::destroy calls
// it): the block then carries a destroy_hook and a copy of the allocator after the object.
template <class Alloc, class T>
concept has_own_destroy = requires(Alloc& alloc, T* p) {
  alloc.destroy(p);
};

// Where the allocator copy of a destroy_hook is: the first suitably aligned address after it.
template <class Alloc>
Alloc* allocator_after(destroy_hook& hook) noexcept {
  auto* at = align_up(reinterpret_cast<std::byte*>(&hook) + sizeof(destroy_hook), alignof(Alloc));
  return std::launder(reinterpret_cast<Alloc*>(at));
}

// Builds the destroy_hook of `object` (constructed by `alloc`), and the allocator copy it uses.
template <class T, class Alloc>
void place_destroy_hook(T* object, const Alloc& alloc) noexcept {
  auto* hook = ::new (static_cast<void*>(&destroy_hook::after(object)))
      destroy_hook{[](destroy_hook& self, void* p) noexcept {
        auto* copy = allocator_after<Alloc>(self);
        std::allocator_traits<Alloc>::destroy(*copy, static_cast<T*>(p));
        std::destroy_at(copy);
      }};
  ::new (static_cast<void*>(allocator_after<Alloc>(*hook))) Alloc(alloc);
}

template <class T, class Alloc>
struct block_layout;

template <class U, class T, class Alloc>
class block_allocator {
 public:
  using value_type = U;
  using unit = block_unit<T>;
  using unit_allocator = typename std::allocator_traits<Alloc>::template rebind_alloc<unit>;
  using layout = block_layout<T, Alloc>;

  block_allocator(const Alloc& alloc, unit* block) noexcept : units_(alloc), block_(block) {}
  template <class V>
  block_allocator(const block_allocator<V, T, Alloc>& other) noexcept
      : units_(other.units_), block_(other.block_) {}
  template <class V>
  struct rebind {
    using other = block_allocator<V, T, Alloc>;
  };

  U* allocate(std::size_t n) noexcept {
    static_assert(
        sizeof(U) <= layout::object_offset - layout::prefix && alignof(U) <= alignof(unit),
        "weakref: this standard library's shared_ptr control block is larger than "
        "block_allocator::control_block_model; update the model");
    (void)n;  // always 1: std::shared_ptr allocates exactly one control block
    return static_cast<U*>(static_cast<void*>(
        reinterpret_cast<std::byte*>(std::exchange(block_, nullptr)) + layout::prefix));
  }
  void deallocate(U* p, std::size_t) noexcept {
    using traits = std::allocator_traits<unit_allocator>;
    auto* block =
        static_cast<unit*>(static_cast<void*>(reinterpret_cast<std::byte*>(p) - layout::prefix));
    // The allocator's own pointer type, which may be a class (a "fancy pointer").
    traits::deallocate(units_, std::pointer_traits<typename traits::pointer>::pointer_to(*block),
                       layout::units);
  }

  template <class V>
  friend bool operator==(const block_allocator& a, const block_allocator<V, T, Alloc>& b) noexcept {
    return a.units_ == b.units_;
  }

 private:
  template <class, class, class>
  friend class block_allocator;
  [[no_unique_address]] unit_allocator units_;
  unit* block_;
};

template <class T, class Alloc>
struct block_layout {
  using allocator = block_allocator<T, T, Alloc>;
  // For sizing only: std::shared_ptr's control block for a pointer with a deleter and an
  // allocator is a vtable pointer, two counters, the deleter, the allocator and the pointer
  // (libstdc++: int counters; libc++: long counters). block_allocator::allocate checks that
  // the real one fits, so a standard library with another layout fails to compile, not to run.
  struct control_block_model {
    virtual ~control_block_model() = default;
#if defined(_LIBCPP_VERSION)
    long use, weak;
#else
    int use, weak;
#endif
    object_header deleter;
    allocator alloc;
    void* pointer;
  };
  static constexpr std::size_t round_up(std::size_t n, std::size_t to) {
    return (n + to - 1) / to * to;
  }
  // A type the cycle collector tracks gets its gc_record in front of the control block.
  static constexpr std::size_t prefix =
      is_traversable<T> ? round_up(sizeof(gc_record), block_alignment<T>) : 0;
  static constexpr std::size_t object_offset =
      prefix + round_up(sizeof(control_block_model), alignof(T));
  // An allocator with its own destroy(): room for a destroy_hook and a copy of the allocator
  // after the object, each with its worst-case alignment padding.
  static constexpr std::size_t destroy_suffix =
      has_own_destroy<Alloc, T>
          ? alignof(destroy_hook) - 1 + sizeof(destroy_hook) + alignof(Alloc) - 1 + sizeof(Alloc)
          : 0;
  static constexpr std::size_t units =
      round_up(object_offset + sizeof(T) + destroy_suffix, block_alignment<T>) / block_alignment<T>;
};

}  // namespace weakref::detail
