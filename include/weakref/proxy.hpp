// weakref/proxy.hpp — weakref::proxy<T>: a weak reference used like the object itself, which
// throws reference_error once the object died. Python: weakref.proxy.
//
// Example:
//   auto account = weakref::make_shared<Account>(100);
//   weakref::proxy<Account> p(account);
//   p->deposit(5);          // the object is kept alive for the whole expression
//   account.reset();
//   try { p->deposit(5); } catch (const weakref::reference_error& e) { /* "weakly-referenced
//                                                                     object no longer exists" */ }
//
// Lifetime and thread-safety: as weakref::ref. operator-> keeps the object alive for the whole
// expression, operator() for the whole call, so the object cannot die mid-call.
#pragma once

#include <concepts>
#include <functional>
#include <memory>
#include <utility>

#include "weakref/detail/handle_access.hpp"
#include "weakref/errors.hpp"
#include "weakref/make_shared.hpp"

namespace weakref {

namespace detail {

// What proxy::operator-> returns: holds the object alive until the end of the full expression.
template <class T>
class proxy_access {
 public:
  explicit proxy_access(std::shared_ptr<T> object) noexcept : object_(std::move(object)) {}
  T* operator->() const noexcept { return object_.get(); }

 private:
  std::shared_ptr<T> object_;
};

}  // namespace detail

// weakref::proxy<T>
//
// Copies share one weak reference object; all callback-less proxies to one object share one
// canonical object (counted once by getweakrefcount, separately from the canonical ref).
// There is no std::hash (Python proxies are unhashable) and no comparison.
template <class T>
class proxy {
 public:
  using element_type = T;

  // Throws type_error if `obj` is empty or was not made by weakref::make_shared.
  explicit proxy(const std::shared_ptr<T>& obj)
      : node_(detail::canonical_node(detail::header_of(obj, "weakref::proxy"), obj,
                                     detail::node_kind::canonical_proxy)),
        element_(obj.get()) {}

  // `callback` (void(const proxy<T>&) or void()) runs once when the object dies, receiving
  // this proxy (already dead); its exceptions go to the unraisable hook. An empty callback
  // (an empty std::function, a null function pointer) is no callback: the result is the
  // canonical proxy, as proxy(obj) (Python: proxy(o, None) is proxy(o)).
  template <detail::callback_for<proxy<T>> F>
  proxy(const std::shared_ptr<T>& obj, F&& callback)
      : node_(detail::callback_or_canonical_node(detail::header_of(obj, "weakref::proxy"), obj,
                                                 detail::node_kind::canonical_proxy,
                                                 "proxy callback", std::forward<F>(callback),
                                                 [element = obj.get()](detail::node_handle node) {
                                                   return proxy(std::move(node), element);
                                                 })),
        element_(obj.get()) {}

  proxy(const proxy&) = default;
  proxy(proxy&&) noexcept = default;
  // The old weak reference object goes last, once this proxy is whole: letting go of it may run
  // user code (its callback's destructor), which may read this proxy.
  proxy& operator=(proxy other) noexcept {
    std::swap(element_, other.element_);
    std::swap(node_, other.node_);
    return *this;
  }
  ~proxy() = default;

  // Member access on the object, kept alive for the whole expression.
  // Throws reference_error once the object died.
  detail::proxy_access<T> operator->() const { return detail::proxy_access<T>(lock_or_throw()); }

  // Calls the object (for callable referents). Throws reference_error once the object died.
  // NOTE: a reference returned by the call may outlive the object; copy what you keep.
  template <class... A>
  decltype(auto) operator()(A&&... args) const requires std::invocable<T&, A...> {
    auto object = lock_or_throw();
    return std::invoke(*object, std::forward<A>(args)...);
  }

  bool alive() const noexcept { return node_ && node_->alive(); }

 private:
  friend struct detail::handle_access;

  proxy(detail::node_handle node, T* element) noexcept
      : node_(std::move(node)), element_(element) {}

  std::shared_ptr<T> lock_or_throw() const {
    if (auto object = detail::lock_as(node_.get(), element_)) return object;
    throw reference_error();
  }

  detail::node_handle node_;
  T* element_;
};

}  // namespace weakref
