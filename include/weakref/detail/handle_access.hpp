// weakref/detail/handle_access.hpp — building public handles (ref, proxy, weak_method) around
// an existing node, for callbacks and getweakrefs. The handles befriend this one struct.
#pragma once

#include <concepts>
#include <memory>
#include <type_traits>
#include <utility>

#include "weakref/detail/object_header.hpp"

namespace weakref::detail {

struct handle_access {
  template <class Handle, class... Extra>
  static Handle make(node_handle node, Extra&&... extra) {
    return Handle(std::move(node), std::forward<Extra>(extra)...);
  }
  // The weak reference object a handle shares (null for an empty handle).
  template <class Handle>
  static weakref_node* node_of(const Handle& h) noexcept requires requires {
    h.node_.get();
  }
  { return h.node_.get(); }

  // The object's identity (null for an empty handle), for comparisons across handle types.
  template <class Handle>
  static const void* owner_id(const Handle& h) noexcept {
    return h.node_ ? h.node_->owner_id() : nullptr;
  }
};

// A callback for handle type H: invocable as void(const H&) or void().
template <class U, class T>
concept pointer_convertible_to = std::convertible_to<U*, T*>;

template <class F, class H>
concept callback_for = std::invocable < std::decay_t<F>
&, const H& > || std::invocable<std::decay_t<F>&>;

// Whether `f` is an empty callable: a null function pointer, or an object with an explicit
// operator bool (std::function, std::move_only_function, ...) that says false. A callback that
// is empty counts as no callback (Python: ref(o, None) has none), so it is never called.
template <class F>
bool is_empty_callable(const F& f) noexcept {
  if constexpr (std::is_pointer_v<F> || std::is_member_pointer_v<F>) {
    return f == nullptr;
  } else if constexpr (requires { f.operator bool(); }) {
    return !static_cast<bool>(f);
  } else {
    return false;
  }
}

template <class F, class H>
void invoke_callback(F& callback, const H& handle) {
  if constexpr (std::invocable<F&, const H&>) {
    callback(handle);
  } else {
    callback();
  }
}

// Creates and links a node for `obj` whose callback receives the handle `make_handle` builds.
template <class T, class F, class MakeHandle>
node_handle link_callback_node(object_header& header, const std::shared_ptr<T>& obj,
                               std::string_view where, F&& callback, MakeHandle make_handle) {
  auto fire = [callback = std::decay_t<F>(std::forward<F>(callback)),
               make_handle = std::move(make_handle)](weakref_node& node) mutable {
    invoke_callback(callback, make_handle(node_handle::share(node)));
  };
  auto* node = new callback_node<decltype(fire)>(header, std::weak_ptr<const void>(obj),
                                                 node_kind::other, where, std::move(fire));
  header.link(node);
  return node_handle(node);
}

// The canonical node of `kind` for `obj` (created on first use).
template <class T>
node_handle canonical_node(object_header& header, const std::shared_ptr<T>& obj, node_kind kind) {
  return node_handle(header.canonical(
      kind, [&] { return new weakref_node(header, std::weak_ptr<const void>(obj), kind, false); }));
}

// The node of a ref or proxy made with `callback`: as link_callback_node, or the canonical node
// of `kind` if the callback is empty (Python: ref(o, None) is ref(o)).
template <class T, class F, class MakeHandle>
node_handle callback_or_canonical_node(object_header& header, const std::shared_ptr<T>& obj,
                                       node_kind kind, std::string_view where, F&& callback,
                                       MakeHandle make_handle) {
  if (is_empty_callable(callback)) return canonical_node(header, obj, kind);
  return link_callback_node(header, obj, where, std::forward<F>(callback), std::move(make_handle));
}

// Locks `node` and re-points the result at `element` (the handle's own view of the object).
template <class T>
std::shared_ptr<T> lock_as(const weakref_node* node, T* element) noexcept {
  if (!node) return nullptr;
  auto owner = node->lock();
  if (!owner) return nullptr;
  return std::shared_ptr<T>(std::move(owner), element);
}

}  // namespace weakref::detail
