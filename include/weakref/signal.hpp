// weakref/signal.hpp — weakref::signal<void(Args...)>: an event bus whose slots are callables
// or an object's member functions; a slot bound to an object is disconnected by the object's
// death, so listeners never unsubscribe by hand. connection and scoped_connection disconnect
// explicitly. Python: no counterpart in weakref (the idiom is a WeakSet or WeakMethods of
// listeners); the C++ model is Boost.Signals2 with track_foreign, on weakref's death hooks.
//
// Example:
//   weakref::signal<void(const std::string&)> on_event;
//   auto window = weakref::make_shared<Window>();
//   on_event.connect(window, &Window::handle);                  // tracked: no unsubscribe
//   weakref::scoped_connection log = on_event.connect([](const std::string& e) { log(e); });
//   on_event("open");                                           // window->handle("open"), log
//   window.reset();                                             // disconnects the first slot
//   on_event("close");                                          // log only; size() == 1
//
// Lifetime and thread-safety: like Boost.Signals2's signal, every member except the move
// operations and the destructor may be called from several threads at once, and objects may die
// on any thread at any time, also during an emission. Slots never run under an internal lock,
// so a slot may do anything: connect (the new slot is not called by the running emission),
// disconnect any slot, emit again, or destroy objects, connections and even the signal itself.
// An emission calls the slots connected when it started, in connection order, skipping those
// disconnected or whose object died before their turn; it holds each slot (and its object)
// strongly while the slot runs. Exceptions a slot throws go to the unraisable hook
// (where = "weakref::signal slot") and the next slots still run.
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "weakref/detail/signal_core.hpp"
#include "weakref/detail/signal_slots.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/unraisable.hpp"

namespace weakref {

template <class Signature>
class signal;

// weakref::connection
//
// A handle on one connected slot, returned by signal::connect. Copies share the slot. It never
// keeps the slot's object alive, and dropping it does not disconnect (see scoped_connection).
// One connection object must not be mutated from two threads at once; copies may be used on
// different threads, and disconnect() may race with emissions, deaths and other disconnects.
class connection {
 public:
  // Refers to no slot: connected() is false, disconnect() does nothing.
  connection() noexcept = default;

  // Disconnects the slot: no emission calls it after this returns (an emission already inside
  // the slot on another thread finishes that call). Idempotent; never throws.
  void disconnect() const noexcept {
    if (slot_) slot_->disconnect();
  }

  // Whether the slot is still connected: false after disconnect(), disconnect_all(), the
  // signal's destruction, or the death of the slot's object.
  bool connected() const noexcept { return slot_ && slot_->connected(); }

  void swap(connection& other) noexcept { std::swap(slot_, other.slot_); }

  // Equal when both refer to the same slot, or both to none.
  friend bool operator==(const connection& a, const connection& b) noexcept {
    return a.slot_.get() == b.slot_.get();
  }

 private:
  template <class>
  friend class signal;

  explicit connection(detail::slot_ref slot) noexcept : slot_(std::move(slot)) {}

  detail::slot_ref slot_;
};

// weakref::scoped_connection
//
// A connection that disconnects its slot when it is destroyed or assigned over (RAII), as
// Boost.Signals2's. Movable, not copyable.
class scoped_connection {
 public:
  scoped_connection() noexcept = default;
  // Takes charge of `c`'s slot. Implicit, so `scoped_connection s = sig.connect(...)` works.
  scoped_connection(connection c) noexcept  // NOLINT(google-explicit-constructor)
      : connection_(std::move(c)) {}
  scoped_connection(scoped_connection&& other) noexcept
      : connection_(std::exchange(other.connection_, connection())) {}
  scoped_connection(const scoped_connection&) = delete;
  scoped_connection& operator=(const scoped_connection&) = delete;

  // Disconnects the slot held so far, then takes charge of the other one.
  scoped_connection& operator=(scoped_connection&& other) noexcept {
    if (this != &other) {
      connection_.disconnect();
      connection_ = std::exchange(other.connection_, connection());
    }
    return *this;
  }
  scoped_connection& operator=(connection c) noexcept {
    connection_.disconnect();
    connection_ = std::move(c);
    return *this;
  }

  ~scoped_connection() { connection_.disconnect(); }

  void disconnect() const noexcept { connection_.disconnect(); }
  bool connected() const noexcept { return connection_.connected(); }

  // Stops managing the slot (it stays connected) and returns it.
  connection release() noexcept { return std::exchange(connection_, connection()); }

  // The managed connection (a copy does not disconnect anything when destroyed).
  const connection& get() const noexcept { return connection_; }

 private:
  connection connection_;
};

// weakref::signal<void(Args...)>
//
// An event bus: operator()(args...) calls every connected slot with args, in connection order.
// A slot is a callable the signal owns (connect(f)) or something to call on an object held
// weakly (connect(obj, &T::method) or connect(obj, f) with f(T&, args...)), which the object's
// death disconnects. Only void signatures: results are discarded.
// Non-copyable (its connections refer to it); movable: the slots and connections follow.
template <class... Args>
class signal<void(Args...)> {
 public:
  using signature_type = void(Args...);
  using size_type = std::size_t;

  // An empty signal. Allocates its shared state (so a signal never allocates on emit).
  signal() : core_(new detail::signal_core) {}
  signal(const signal&) = delete;
  signal& operator=(const signal&) = delete;
  // The slots move with the signal; `other` is left empty and usable.
  signal(signal&& other) noexcept
      : core_(other.core_.exchange(nullptr, std::memory_order_relaxed)) {}
  // The old slots are disconnected after the new ones move in: a callable's destructor that
  // connects to this signal connects to its new contents.
  signal& operator=(signal&& other) noexcept {
    if (this != &other) {
      close(core_.exchange(other.core_.exchange(nullptr, std::memory_order_relaxed),
                           std::memory_order_relaxed));
    }
    return *this;
  }
  // Disconnects every slot (their connections answer connected() == false). Destroying the
  // signal from one of its own slots during an emission is allowed: the emission calls no
  // further slot and returns normally. A slot that a callable's destructor connects meanwhile
  // is disconnected too.
  ~signal() {
    while (auto* core = core_.exchange(nullptr, std::memory_order_relaxed)) close(core);
  }

  // Connects a callable invocable as f(args...), which the signal owns (a copy or the moved
  // object) until the slot is disconnected and no emission or connection holds it.
  // Throws: std::bad_alloc, or what copying/moving `f` throws; then nothing is connected.
  template <class F>
  requires std::invocable < std::decay_t<F>
  &, detail::signal_arg_t<Args>... > connection connect(F&& f) {
    using slot_type = detail::function_slot<std::decay_t<F>, Args...>;
    auto& core = this->core();
    return add(core, new slot_type(core, std::forward<F>(f)));
  }

  // Connects `method` of `obj`'s object: obj->*method(args...). The object is held weakly: its
  // death disconnects the slot. `method` may be const, noexcept, of a base class, return a
  // value (discarded) or take parameters `args` convert to.
  // Instead of a member function, `f` may be any callable invocable as f(T&, args...).
  // The slot is one weak reference object on `obj` (counted by getweakrefcount) until the
  // slot is disconnected and freed.
  // Throws: type_error if `obj` is empty or not made by weakref::make_shared; std::bad_alloc.
  template <class T, class F>
  requires std::invocable < std::decay_t<F>
  &, T&, detail::signal_arg_t<Args>... > connection connect(const std::shared_ptr<T>& obj, F&& f) {
    auto& header = detail::header_of(obj, "weakref::signal::connect");
    using slot_type = detail::tracked_slot<T, std::decay_t<F>, Args...>;
    auto& core = this->core();
    auto* slot = new slot_type(core, header, obj, std::forward<F>(f));
    header.link(slot);  // from now on the object's death disconnects it
    return add(core, slot);
  }

  // Emits: calls each slot connected when the emission starts, in connection order, unless it
  // is disconnected or its object died before its turn. Arguments are passed to each slot as
  // lvalues (a by-value parameter gets its own copy; an X&& argument is passed as an rvalue).
  // Throws nothing: a slot's exception goes to the unraisable hook and the next slot runs.
  // Steady state: no allocation, no kernel lock; a pin of the slot list plus, per slot, a
  // flag test, an indirect call and (tracked slots) a weak lock of the object.
  void operator()(Args... args) noexcept {
    // A slot may destroy *this: keep only locals.
    detail::signal_core* core = core_.load(std::memory_order_acquire);
    if (!core) return;
    detail::slot_list* list = core->pin();
    if (!list) return;
    std::size_t n = list->size(std::memory_order_acquire);
    detail::signal_slot_base** slots = list->slots();
    for (std::size_t i = 0; i < n; ++i) {
      auto* slot = static_cast<detail::signal_slot<Args...>*>(slots[i]);
      if (!slot->connected_now()) continue;
      try {
        slot->invoke(args...);
      } catch (...) {
        detail::report_unraisable(std::current_exception(), "weakref::signal slot");
      }
    }
    core->unpin(list);  // the list holds the core: it is alive even if *this is not
  }

  // The number of connected slots (dead objects' slots not counted). Exact, except while an
  // object of a slot is dying on another thread. O(1).
  size_type size() const noexcept {
    auto* core = core_.load(std::memory_order_acquire);
    return core ? core->size() : 0;
  }
  bool empty() const noexcept { return size() == 0; }

  // Disconnects every slot (Boost.Signals2's name). A running emission calls no further slot.
  void disconnect_all() noexcept {
    if (auto* core = core_.load(std::memory_order_acquire)) core->disconnect_all(false);
  }
  // Same as disconnect_all() (std container's name).
  void clear() noexcept { disconnect_all(); }

 private:
  // A moved-from signal comes back to life here; two threads may race to revive it.
  detail::signal_core& core() {
    auto* core = core_.load(std::memory_order_acquire);
    if (core) [[likely]]
      return *core;
    auto* fresh = new detail::signal_core;
    if (core_.compare_exchange_strong(core, fresh, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      return *fresh;
    }
    fresh->release();  // another thread's core is in place
    return *core;
  }

  connection add(detail::signal_core& core, detail::signal_slot<Args...>* slot) {
    detail::slot_ref ref(slot);  // the connection's reference
    try {
      core.add(*slot);
    } catch (...) {
      ref->abandon();  // unlinks a tracked slot from its object
      throw;
    }
    return connection(std::move(ref));
  }

  // Disconnects every slot of `core` (no longer this signal's) and lets go of it. Runs user code
  // (the callables' destructors), which may connect to this signal anew.
  static void close(detail::signal_core* core) noexcept {
    if (!core) return;
    core->disconnect_all(true);
    core->release();
  }

  // Null only once moved from. Atomic because every member but the moves and the destructor
  // may run on several threads, including on a moved-from signal, which core() revives.
  std::atomic<detail::signal_core*> core_;
};

}  // namespace weakref
