// weakref/ref.hpp — weakref::ref<T>: a weak reference to an object owned by std::shared_ptr,
// with an optional callback run once when the object dies; getweakrefcount and getweakrefs.
// Python: weakref.ref, weakref.getweakrefcount, weakref.getweakrefs; same_ref is `is` between
// weakrefs.
//
// Example:
//   auto obj = weakref::make_shared<Node>();
//   weakref::ref<Node> r(obj, [](const weakref::ref<Node>& dead) { std::puts("gone"); });
//   if (auto strong = r()) strong->visit();  // the object, or nullptr once it died
//   obj.reset();                              // prints "gone"; r() is now nullptr
//
// Lifetime and thread-safety: like std::weak_ptr, a ref may be copied, locked and destroyed on
// any thread while the object dies on another; one ref object is not safe against concurrent
// mutation. Callbacks run on the thread that drops the last strong reference, after every
// weak reference to the object answers nullptr and before the destructor, newest first.
// A callback runs only if some copy of its ref is still alive when the object dies.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "weakref/detail/handle_access.hpp"
#include "weakref/detail/header_lookup.hpp"
#include "weakref/detail/object_header.hpp"
#include "weakref/make_shared.hpp"

namespace weakref {

// weakref::ref<T>
//
// Copies share one weak reference object (CPython's weakref object): all callback-less refs
// to one object share one canonical object; each ref made with a callback is its own.
// Equality and std::hash follow the owner (the object), before and after its death.
template <class T>
class ref {
 public:
  using element_type = T;

  // An empty ref: refers to nothing, lock() is nullptr, equal to every other empty ref.
  ref() noexcept = default;

  // A weak reference to `obj`'s object. Throws type_error if `obj` is empty or was not made
  // by weakref::make_shared.
  explicit ref(const std::shared_ptr<T>& obj)
      : node_(detail::canonical_node(detail::header_of(obj, "weakref::ref"), obj,
                                     detail::node_kind::canonical_ref)),
        element_(obj.get()) {}

  // A weak reference whose `callback` (void(const ref<T>&) or void()) runs once when the
  // object dies, receiving this ref (already dead). Exceptions it throws go to the
  // unraisable hook. Throws type_error as above.
  // An empty callback (an empty std::function, a null function pointer) is no callback: the
  // result is the canonical ref, as ref(obj) (Python: ref(o, None) is ref(o)).
  // NOTE: a callback that owns a strong reference to the object keeps it alive forever.
  template <detail::callback_for<ref<T>> F>
  ref(const std::shared_ptr<T>& obj, F&& callback)
      : node_(detail::callback_or_canonical_node(detail::header_of(obj, "weakref::ref"), obj,
                                                 detail::node_kind::canonical_ref,
                                                 "weakref callback", std::forward<F>(callback),
                                                 [element = obj.get()](detail::node_handle node) {
                                                   return ref(std::move(node), element);
                                                 })),
        element_(obj.get()) {}

  // Converts from a ref to a derived type; shares the same weak reference object.
  // The pointer is converted through lock(): converting to a virtual base reads the object,
  // which may be dead (std::weak_ptr's converting constructor does the same).
  template <detail::pointer_convertible_to<T> U>
  ref(const ref<U>& other) noexcept  // NOLINT(google-explicit-constructor): like shared_ptr
      : node_(other.node_), element_(other.lock().get()) {}

  ref(const ref&) = default;
  ref(ref&&) noexcept = default;
  // The old weak reference object goes last, once this ref is whole: letting go of it may run
  // user code (its callback's destructor), which may read this ref.
  ref& operator=(ref other) noexcept {
    std::swap(element_, other.element_);
    std::swap(node_, other.node_);
    return *this;
  }
  ~ref() = default;

  // The object, or nullptr once it died (Python: r()).
  std::shared_ptr<T> operator()() const noexcept { return lock(); }
  std::shared_ptr<T> lock() const noexcept { return detail::lock_as(node_.get(), element_); }

  // Whether the object is still alive. (A dead Python ref is truthy: so ref has no operator bool.)
  bool alive() const noexcept { return node_ && node_->alive(); }

  // Python: r.__callback__ is not None. False once the object died, also inside the callback.
  bool has_callback() const noexcept { return node_ && node_->has_callback(); }

  // A hash of the owner's identity: equal refs hash equal; stable before and after death.
  std::size_t owner_hash() const noexcept {
    return std::hash<const void*>()(detail::handle_access::owner_id(*this));
  }

  // An order on owners, as std::weak_ptr::owner_before: consistent with ==, and stable before
  // and after the object's death, so refs can key a std::set or std::map through
  // std::owner_less<ref<T>> (below). Empty refs come first. (Python's refs have no order: <
  // raises TypeError.)
  template <class U>
  bool owner_before(const ref<U>& other) const noexcept {
    return std::less<const void*>()(detail::handle_access::owner_id(*this),
                                    detail::handle_access::owner_id(other));
  }

  void swap(ref& other) noexcept {
    node_.swap(other.node_);
    std::swap(element_, other.element_);
  }

  // Equal when both refer to the same object (owner identity), alive or dead, or both are empty.
  template <class U>
  friend bool operator==(const ref& a, const ref<U>& b) noexcept {
    return detail::handle_access::owner_id(a) == detail::handle_access::owner_id(b);
  }

 private:
  template <class>
  friend class ref;
  friend struct detail::handle_access;

  ref(detail::node_handle node, T* element) noexcept : node_(std::move(node)), element_(element) {}

  detail::node_handle node_;
  T* element_ = nullptr;
};

// weakref::same_ref(a, b)
//
// Whether two handles (ref, proxy, weak_method, in any combination) share one weak reference
// object: Python's `a is b` between weakrefs. Copies share theirs; callback-less refs to one
// object share its canonical ref, and callback-less proxies its canonical proxy (Python:
// ref(o) is ref(o)); each handle made with a callback, and each weak_method, is its own; a ref
// from getweakrefs shares the one it lists. False if either handle is empty.
// a == b asks something else: whether both refer to the same object.
template <class A, class B>
bool same_ref(const A& a, const B& b) noexcept requires requires {
  detail::handle_access::node_of(a);
  detail::handle_access::node_of(b);
}
{
  const auto* node = detail::handle_access::node_of(a);
  return node && node == detail::handle_access::node_of(b);
}

// weakref::getweakrefcount(obj)
//
// The number of weak reference objects to `obj`'s object, counted as CPython does: the
// canonical ref and the canonical proxy once each, every ref/proxy/weak_method made with a
// callback, every finalize and every weak container entry once each. 0 for an empty or
// non-weakrefable pointer.
template <class T>
std::size_t getweakrefcount(const std::shared_ptr<T>& obj) noexcept {
  auto* header = detail::find_header(obj);
  return header ? header->count() : 0;
}

// weakref::getweakrefs(obj)
//
// A ref for each weak reference object to `obj`'s object, in CPython's order: the canonical
// ref, the canonical proxy, then the others newest first. Each shares its weak reference
// object (so has_callback() tells which have callbacks). Throws type_error for an empty or
// non-weakrefable pointer.
// NOTE: CPython returns [] for objects that cannot be weakly referenced.
// If it throws, every handle it took is given back: counts and callbacks are as before.
template <class T>
std::vector<ref<T>> getweakrefs(const std::shared_ptr<T>& obj) {
  auto nodes = detail::header_of(obj, "weakref::getweakrefs").nodes();
  std::vector<ref<T>> refs;
  refs.reserve(nodes.size());  // if this throws, `nodes` releases the handles
  for (auto& node : nodes) {
    refs.push_back(detail::handle_access::make<ref<T>>(std::move(node), obj.get()));
  }
  return refs;
}

}  // namespace weakref

// std::hash<weakref::ref<T>>: the owner's identity, stable before and after death.
template <class T>
struct std::hash<weakref::ref<T>> {
  std::size_t operator()(const weakref::ref<T>& r) const noexcept { return r.owner_hash(); }
};

// std::owner_less<weakref::ref<T>>: owner_before as a comparator, for std::set and std::map
// keyed by refs. Transparent: it also compares refs of other element types (a ref<Base> finds
// a ref<Derived> to the same object). (std::owner_less<void> takes only shared_ptr and
// weak_ptr in the standard; libc++ keeps to that.)
template <class T>
struct std::owner_less<weakref::ref<T>> {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const weakref::ref<A>& a, const weakref::ref<B>& b) const noexcept {
    return a.owner_before(b);
  }
};
