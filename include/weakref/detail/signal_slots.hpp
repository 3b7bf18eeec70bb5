// weakref/detail/signal_slots.hpp — the two kinds of weakref::signal slot: a callable the
// signal owns, and a tracked slot (a callable applied to an object held weakly), which is also a
// weak reference node on the object so that the object's death disconnects it.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>

#include "weakref/detail/object_header.hpp"
#include "weakref/detail/signal_core.hpp"

namespace weakref::detail {

// How an emission hands an argument declared as A to each slot: an lvalue, so every slot sees
// the same value (a by-value parameter is copied per slot); an rvalue only for A = X&&.
template <class A>
using signal_arg_t = std::conditional_t<std::is_rvalue_reference_v<A>, A, A&>;

template <class... Args>
class signal_slot : public signal_slot_base {
 public:
  using invoke_fn = void (*)(signal_slot&, Args&...);

  // Calls the slot. A plain function pointer, not a virtual call: one indirect call per slot.
  void invoke(Args&... args) { invoke_(*this, args...); }

 protected:
  signal_slot(signal_core& core, invoke_fn invoke) noexcept
      : signal_slot_base(core), invoke_(invoke) {}

 private:
  invoke_fn invoke_;
};

// A callable the signal owns, with its own reference count.
template <class F, class... Args>
class function_slot final : public signal_slot<Args...> {
 public:
  template <class G>
  function_slot(signal_core& core, G&& f)
      : signal_slot<Args...>(core, &call), f_(std::forward<G>(f)) {}

  void retain() noexcept override { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept override {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  static void call(signal_slot<Args...>& base, Args&... args) {
    std::invoke(static_cast<function_slot&>(base).f_, static_cast<signal_arg_t<Args>>(args)...);
  }

  std::atomic<std::size_t> refs_{1};
  F f_;
};

// `f` applied to an object held weakly: f(obj, args...), with f a member function pointer or
// any callable. It is a weak reference node on the object (counted by getweakrefcount), whose
// death callback disconnects it; its handle count is the slot's reference count.
template <class T, class F, class... Args>
class tracked_slot final : public signal_slot<Args...>, public weakref_node {
 public:
  template <class G>
  tracked_slot(signal_core& core, object_header& header, const std::shared_ptr<T>& obj, G&& f)
      : signal_slot<Args...>(core, &call),
        weakref_node(header, std::weak_ptr<const void>(obj), node_kind::other, true),
        element_(obj.get()),
        f_(std::forward<G>(f)) {}

  void retain() noexcept override { weakref_node::retain(); }
  void release() noexcept override { weakref_node::release(); }

 private:
  static void call(signal_slot<Args...>& base, Args&... args) {
    auto& self = static_cast<tracked_slot&>(base);
    auto owner = self.weakref_node::lock();  // strong while f runs: the object cannot die in it
    if (!owner) return;
    std::invoke(self.f_, *self.element_, static_cast<signal_arg_t<Args>>(args)...);
  }

  // Explicit disconnection: stop being a weak reference to the object right away.
  void on_disconnect() noexcept override { header().unlink(this); }
  bool expired() const noexcept override { return !weakref_node::alive(); }
  void fire() override { this->disconnect_by_death(); }
  std::string_view where() const noexcept override { return "weakref::signal slot"; }

  T* element_;
  F f_;
};

}  // namespace weakref::detail
