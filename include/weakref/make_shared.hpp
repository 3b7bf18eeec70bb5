// weakref/make_shared.hpp — creating objects that can be weakly referenced.
// Python: only objects whose type has a __weakref__ slot can be weakly referenced; here, only
// objects created by weakref::make_shared or weakref::allocate_shared can.
//
// Example:
//   auto widget = weakref::make_shared<Widget>("name", 3);  // a plain std::shared_ptr<Widget>
//   std::shared_ptr<Base> base = widget;                     // still weakrefable: same owner
//   assert(weakref::is_weakrefable(base));
//   assert(!weakref::is_weakrefable(std::make_shared<Widget>("other", 1)));
//
// Lifetime and thread-safety: the result is an ordinary std::shared_ptr (copies, conversions,
// aliasing, std::weak_ptr, use_count and enable_shared_from_this behave as with
// std::make_shared). Its control block also holds the object's weak reference list, whose
// callbacks run when the last strong reference goes, on that thread, before ~T.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "weakref/detail/block_allocator.hpp"
#include "weakref/detail/gc_visitor.hpp"
#include "weakref/detail/header_lookup.hpp"
#include "weakref/detail/object_header.hpp"
#include "weakref/errors.hpp"

#if !defined(__cpp_rtti) && !defined(__GXX_RTTI)
#error "weakref needs RTTI: it finds an object's weak reference list with std::get_deleter"
#endif

namespace weakref {
namespace detail {

template <class T>
void traverse_object(void* object, gc::visitor& visit) {
  auto& t = *static_cast<T*>(object);
  if constexpr (has_member_traverse<T, gc::visitor>) {
    t.traverse(visit);
  } else {
    traverse(t, visit);
  }
}

// The collector's view of a tracked T allocated through Alloc (gc_registry.hpp).
template <class T, class Alloc>
inline constexpr gc_type gc_type_of{
    &traverse_object<T>, &typeid(T),
    sizeof(gc_record) + block_layout<T, Alloc>::object_offset - block_layout<T, Alloc>::prefix};

}  // namespace detail

// weakref::allocate_shared<T>(alloc, args...)
//
// Like std::allocate_shared: one allocation from `alloc` (rebound) holds the control block and
// the object, which is constructed with std::allocator_traits<Alloc>::construct (so
// uses-allocator construction works) and destroyed with std::allocator_traits<Alloc>::destroy,
// both with a copy of `alloc` rebound to T less const and volatile. T may be const, as for
// std::make_shared<const T>. (An allocator with its own destroy() costs a copy of it and a
// function pointer in the block; without one, destroy is ~T.) A T with a traverse member (or a
// free traverse found by ADL) is tracked by the cycle collector (gc.hpp).
// Throws: whatever the allocation or T's constructor throws; nothing is leaked then.
template <class T, class Alloc, class... Args>
std::shared_ptr<T> allocate_shared(const Alloc& alloc, Args&&... args) {
  static_assert(!std::is_array_v<T>, "weakref::allocate_shared: arrays are not supported");
  // As std::allocate_shared: the allocator is rebound to T without const or volatile, and
  // constructs and destroys the object as that type.
  using object_type = std::remove_cv_t<T>;
  using object_allocator =
      typename std::allocator_traits<Alloc>::template rebind_alloc<object_type>;
  using block_allocator = detail::block_allocator<object_type, object_type, object_allocator>;
  using layout = detail::block_layout<object_type, object_allocator>;
  using unit_traits = std::allocator_traits<typename block_allocator::unit_allocator>;

  object_allocator objects(alloc);
  typename block_allocator::unit_allocator units(objects);
  auto allocation = unit_traits::allocate(units, layout::units);  // maybe a fancy pointer
  auto* block = std::to_address(allocation);
  auto* object = static_cast<object_type*>(
      static_cast<void*>(reinterpret_cast<std::byte*>(block) + layout::object_offset));
  try {
    std::allocator_traits<object_allocator>::construct(objects, object,
                                                       std::forward<Args>(args)...);
  } catch (...) {
    unit_traits::deallocate(units, allocation, layout::units);
    throw;
  }
  if constexpr (detail::has_own_destroy<object_allocator, object_type>) {
    detail::place_destroy_hook(object, objects);
  }
  // Handing shared_ptr the constructed T* lets it wire enable_shared_from_this itself.
  std::shared_ptr<T> result(object, detail::object_header{}, block_allocator(objects, block));
  if constexpr (detail::has_own_destroy<object_allocator, object_type>) {
    std::get_deleter<detail::object_header>(result)->set_destroy_hook();
  }
  if constexpr (detail::is_traversable<object_type>) {
    detail::gc_track(
        result, reinterpret_cast<std::byte*>(block) + layout::prefix - sizeof(detail::gc_record),
        detail::gc_type_of<object_type, object_allocator>);
  }
  return result;
}

// weakref::make_shared<T>(args...)
//
// Like std::make_shared<T>(args...), but the object can be weakly referenced.
template <class T, class... Args>
std::shared_ptr<T> make_shared(Args&&... args) {
  return weakref::allocate_shared<T>(std::allocator<std::remove_cv_t<T>>(),
                                     std::forward<Args>(args)...);
}

// weakref::is_weakrefable(p)
//
// True if `p` shares ownership of an object made by weakref::make_shared or
// weakref::allocate_shared (whatever pointer it stores); false for empty pointers and others.
template <class T>
bool is_weakrefable(const std::shared_ptr<T>& p) noexcept {
  return detail::find_header(p) != nullptr;
}

namespace detail {

// Throws the type_error of header_of. Out of line, so header_of inlines into its callers.
[[noreturn, gnu::noinline, gnu::cold]] inline void throw_not_weakrefable(bool empty,
                                                                         const char* facility) {
  throw type_error(std::string(facility) +
                   (empty ? ": the std::shared_ptr is empty"
                          : ": this std::shared_ptr was not created by weakref::make_shared") +
                   " (create the object with weakref::make_shared or weakref::allocate_shared)");
}

// The header of `p`'s object, or type_error naming `facility` and the fix.
template <class T>
object_header& header_of(const std::shared_ptr<T>& p, const char* facility) {
  auto* header = find_header(p);
  if (!header) [[unlikely]]
    throw_not_weakrefable(!p, facility);
  return *header;
}

}  // namespace detail
}  // namespace weakref

#include "weakref/detail/gc_collector.hpp"  // gc_track may start a collection
