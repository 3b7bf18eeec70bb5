// weakref/finalize.hpp — weakref::finalize: call a function once, when an object dies, when
// called, or at normal program exit. Python: weakref.finalize.
//
// Example:
//   auto file = weakref::make_shared<TempFile>("/tmp/x");
//   weakref::finalize cleanup(file, remove_path, std::string("/tmp/x"));  // args by value
//   file.reset();            // remove_path("/tmp/x") runs now, once
//   cleanup.alive();         // false
//
// The function and its arguments are stored by value and must not own the object (a lambda
// capturing the shared_ptr, say), or the object never dies before exit (as in CPython).
//
// Lifetime and thread-safety: handles may be copied, called, detached and destroyed on any
// thread; the function runs exactly once, on the thread that wins (the one dropping the last
// strong reference, calling the finalizer, or running exit). Dropping every handle does not
// cancel it: a process-wide registry keeps it, and at normal exit (std::atexit, registered
// when the first finalize is created) runs those still alive whose atexit() is true, newest
// first. After that, finalizers no longer run.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include "weakref/detail/finalize_state.hpp"
#include "weakref/detail/handle_access.hpp"
#include "weakref/detail/header_lookup.hpp"
#include "weakref/detail/object_header.hpp"
#include "weakref/errors.hpp"
#include "weakref/make_shared.hpp"

namespace weakref {

// weakref::finalize
//
// A handle to a finalizer: func(args...) runs exactly once — when `obj` dies (as a weakref
// callback, in CPython's newest-first order among the object's callbacks; exceptions go to
// the unraisable hook), when called, or at normal exit if still alive and atexit() is true.
// Copies are handles to the same finalizer; a default-constructed one is dead.
class finalize {
 public:
  finalize() noexcept = default;

  // Throws type_error if `obj` is empty or was not made by weakref::make_shared, or if `func`
  // is empty (an empty std::function, a null function pointer): it could never run.
  // NOTE: CPython accepts finalize(obj, None) and reports the TypeError when it runs.
  template <class T, class F, class... Args>
  finalize(const std::shared_ptr<T>& obj, F&& func,
           Args&&... args) requires detail::callable_with_copies<F, Args...>
      : state_(create(obj, std::forward<F>(func), std::forward<Args>(args)...)) {}

  finalize(const finalize& other) noexcept : state_(other.state_) {
    if (state_) state_->retain();
  }
  finalize(finalize&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  finalize& operator=(finalize other) noexcept {
    std::swap(state_, other.state_);
    return *this;
  }
// GCC 12 warns, after inlining, that a std::optional<finalize> destroyed after an emplace
// whose constructor may throw reads state_ uninitialized (the optional is then disengaged).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
  ~finalize() {
    if (state_) state_->release();
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  // Neither run nor detached yet (and the object has not died).
  bool alive() const noexcept { return state_ && state_->alive(); }

  // Cancels the finalizer; true if it was alive. While its object is dying (inside another of
  // its callbacks) it is too late: returns false, and the function still runs.
  bool detach() noexcept { return state_ && state_->detach(); }

  // Runs func(args...) now if alive; true if it ran. Exceptions from func propagate.
  bool operator()() { return state_ && state_->run(); }

  // Whether it runs at exit if still alive; false once it is dead (setting is then ignored).
  bool atexit() const noexcept { return alive() && state_->atexit(); }
  void atexit(bool value) noexcept {
    if (alive()) state_->atexit(value);
  }

  friend bool operator==(const finalize& a, const finalize& b) noexcept {
    return a.state_ == b.state_;
  }

 private:
  // One allocation; the handle adopts the reference the finalizer is created with.
  template <class T, class F, class... Args>
  static detail::finalizer* create(const std::shared_ptr<T>& obj, F&& func, Args&&... args) {
    auto* header = detail::find_header(obj);  // header_of's check, inline
    if (!header) [[unlikely]] {
      header = &detail::header_of(obj, "weakref::finalize");  // throws type_error
    }
    if (detail::is_empty_callable(func)) {
      throw type_error("weakref::finalize: the function is empty (it could never run)");
    }
    return detail::payload_finalizer<std::decay_t<F>, std::decay_t<Args>...>::create(
        *header, std::weak_ptr<const void>(obj), std::forward<F>(func),
        std::forward<Args>(args)...);
  }

  detail::finalizer* state_ = nullptr;  // one reference
};

}  // namespace weakref
