// weakref/weak_method.hpp — weakref::weak_method: a member function bound to an object
// without keeping it alive. Python: weakref.WeakMethod.
//
// Example:
//   auto button = weakref::make_shared<Button>();
//   weakref::weak_method on_click(button, &Button::click);   // CTAD: <Button, void, int>
//   bool ran = on_click(3);                                   // true: button.click(3) ran
//   button.reset();
//   ran = on_click(3);                                        // false: nothing to call
//
//   weakref::weak_method area(shape, &Shape::area);           // R = double
//   std::optional<double> a = area();                         // std::nullopt once shape died
//
// Lifetime and thread-safety: as weakref::ref. A call holds a strong reference to the object
// for its whole duration, so the object never dies in the middle of its own method.
#pragma once

#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "weakref/detail/handle_access.hpp"
#include "weakref/make_shared.hpp"

namespace weakref {

// weakref::weak_method<T, R, Args...>
//
// Calls `method` on the object if it is alive. The result is std::optional<R> (std::nullopt
// when the object died), bool for R = void (whether it ran),
// std::optional<std::reference_wrapper<X>> for R = X&, and std::optional<X> for R = X&& (the
// value is moved out while the call still holds the object: a reference into it could outlive it).
// Equality: same object (owner identity) and same method, before and after death.
// Each weak_method is its own weak reference object (counted by getweakrefcount), never shared.
template <class T, class R, class... Args>
class weak_method {
 public:
  using method_type = R (T::*)(Args...);
  using const_method_type = R (T::*)(Args...) const;
  using result_type = std::conditional_t<
      std::is_void_v<R>, bool,
      std::optional<std::conditional_t<std::is_lvalue_reference_v<R>,
                                       std::reference_wrapper<std::remove_reference_t<R>>,
                                       std::remove_cv_t<std::remove_reference_t<R>>>>>;

  // Throws type_error if `obj` is empty or was not made by weakref::make_shared.
  // A const method may be bound through a pointer to const (std::shared_ptr<const T>); a
  // non-const one may not (that does not compile).
  weak_method(const std::shared_ptr<T>& obj, method_type method)
      : weak_method(obj, method_variant(method), no_callback{}, from_parts{}) {}
  weak_method(const std::shared_ptr<const T>& obj, const_method_type method)
      : weak_method(std::const_pointer_cast<T>(obj), method_variant(method), no_callback{},
                    from_parts{}) {}

  // `callback` (void(const weak_method&) or void()) runs once when the object dies, receiving
  // this weak_method (already dead); its exceptions go to the unraisable hook. An empty
  // callback (an empty std::function, a null function pointer) is no callback.
  template <detail::callback_for<weak_method> F>
  weak_method(const std::shared_ptr<T>& obj, method_type method, F&& callback)
      : weak_method(obj, method_variant(method), std::forward<F>(callback), from_parts{}) {}
  template <detail::callback_for<weak_method> F>
  weak_method(const std::shared_ptr<const T>& obj, const_method_type method, F&& callback)
      : weak_method(std::const_pointer_cast<T>(obj), method_variant(method),
                    std::forward<F>(callback), from_parts{}) {}

  weak_method(const weak_method&) = default;
  weak_method(weak_method&&) noexcept = default;
  // The old weak reference object goes last, once this weak_method is whole: letting go of it may
  // run user code (its callback's destructor), which may read this weak_method.
  weak_method& operator=(weak_method other) noexcept {
    std::swap(element_, other.element_);
    std::swap(method_, other.method_);
    std::swap(node_, other.node_);
    return *this;
  }
  ~weak_method() = default;

  // Calls the method on the object, which stays alive for the whole call.
  result_type operator()(Args... args) const {
    auto object = detail::lock_as(node_.get(), element_);
    if (!object) return result_type();
    auto call = [&](auto method) -> decltype(auto) {
      return std::invoke(method, *object, std::forward<Args>(args)...);
    };
    if constexpr (std::is_void_v<R>) {
      std::visit(call, method_);
      return true;
    } else {
      return result_type(std::visit(call, method_));
    }
  }

  bool alive() const noexcept { return node_ && node_->alive(); }

  friend bool operator==(const weak_method& a, const weak_method& b) noexcept {
    return detail::handle_access::owner_id(a) == detail::handle_access::owner_id(b) &&
           a.method_ == b.method_;
  }

 private:
  friend struct detail::handle_access;
  using method_variant = std::variant<method_type, const_method_type>;

  struct no_callback {};
  struct from_parts {};  // tags the constructor the public ones delegate to

  // The object is stored as T* even when bound through a pointer to const: then only a const
  // method was accepted, so it is never modified through this pointer.
  template <class F>
  weak_method(const std::shared_ptr<T>& obj, method_variant method, F&& callback, from_parts)
      : node_(make_node(obj, method, std::forward<F>(callback))),
        element_(obj.get()),
        method_(method) {}

  weak_method(detail::node_handle node, T* element, method_variant method) noexcept
      : node_(std::move(node)), element_(element), method_(method) {}

  template <class F>
  static detail::node_handle make_node(const std::shared_ptr<T>& obj, method_variant method,
                                       F&& callback) {
    auto& header = detail::header_of(obj, "weakref::weak_method");
    if constexpr (!std::is_same_v<std::decay_t<F>, no_callback>) {
      if (!detail::is_empty_callable(callback)) {
        return detail::link_callback_node(header, obj, "weak_method callback",
                                          std::forward<F>(callback),
                                          [element = obj.get(), method](detail::node_handle node) {
                                            return weak_method(std::move(node), element, method);
                                          });
      }
    }
    // Never canonical (CPython: WeakMethod is a ref subclass), so each one counts.
    auto* node = new detail::weakref_node(header, std::weak_ptr<const void>(obj),
                                          detail::node_kind::other, false);
    header.link(node);
    return detail::node_handle(node);
  }

  detail::node_handle node_;
  T* element_;
  method_variant method_;
};

// Deduction: weak_method(obj, &C::m[, callback]) is a weak_method<C, R, Args...>; `obj` may
// point to C or to a class derived from C, const if m is. noexcept methods deduce like the
// others.
template <class T, class C, class R, class... A>
weak_method(std::shared_ptr<T>, R (C::*)(A...)) -> weak_method<C, R, A...>;
template <class T, class C, class R, class... A>
weak_method(std::shared_ptr<T>, R (C::*)(A...) const) -> weak_method<C, R, A...>;
template <class T, class C, class R, class... A>
weak_method(std::shared_ptr<T>, R (C::*)(A...) noexcept) -> weak_method<C, R, A...>;
template <class T, class C, class R, class... A>
weak_method(std::shared_ptr<T>, R (C::*)(A...) const noexcept) -> weak_method<C, R, A...>;
template <class T, class C, class R, class... A, class F>
weak_method(std::shared_ptr<T>, R (C::*)(A...), F) -> weak_method<C, R, A...>;
template <class T, class C, class R, class... A, class F>
weak_method(std::shared_ptr<T>, R (C::*)(A...) const, F) -> weak_method<C, R, A...>;
template <class T, class C, class R, class... A, class F>
weak_method(std::shared_ptr<T>, R (C::*)(A...) noexcept, F) -> weak_method<C, R, A...>;
template <class T, class C, class R, class... A, class F>
weak_method(std::shared_ptr<T>, R (C::*)(A...) const noexcept, F) -> weak_method<C, R, A...>;

}  // namespace weakref
