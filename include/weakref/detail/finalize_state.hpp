// weakref/detail/finalize_state.hpp — what a weakref::finalize is made of: one block holding the
// finalizer's weak reference node, its shared state and its function and arguments; and the
// process-wide registry of finalizers that the run at exit walks.
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

#include "weakref/detail/object_header.hpp"
#include "weakref/detail/visibility.hpp"
#include "weakref/unraisable.hpp"

namespace weakref::detail {

// func(args...) as finalize stores and calls them: decayed copies, called as lvalues.
template <class F, class... Args>
concept callable_with_copies = std::invocable < std::decay_t<F>
&, std::decay_t<Args>&... > ;

class finalizer_registry;

// The state every handle, the registry and the node share. It counts its references: one per
// handle and one for the registry's entry, which a sweep drops once the node is destroyed
// (the node needs the state until then, and a finalizer's node outlives its end), and frees
// the block with the last one.
class finalizer {
 public:
  finalizer(const finalizer&) = delete;
  finalizer& operator=(const finalizer&) = delete;

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    // Only a holder can take another reference (by copying a handle), so the last one left
    // cannot be copied meanwhile: no atomic write needed.
    if (refs_.load(std::memory_order_acquire) == 1 ||
        refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      destroy();
    }
  }

  bool alive() const noexcept { return !claimed_.load(std::memory_order_acquire); }

  // Runs the function if this call is the one that ends the finalizer; returns whether it ran.
  // The caller holds a reference to *this.
  bool run() {
    return run(*this, [this]() noexcept { node_->release(); });
  }

  // Only while the object lives: once it is dying, the finalizer is a callback on its way
  // (CPython's detach() answers None then, and the function still runs).
  // A collection's garbage counts as dying from its condemnation on (gc.hpp).
  bool detach() noexcept {
    // `inspecting_` keeps the node from being released while this reads it: a claimer waits
    // for it to clear before releasing the node. Both sides store, then load the other's flag
    // (sequentially consistent), so at least one of them sees the other.
    while (inspecting_.exchange(true)) std::this_thread::yield();  // one detach at a time
    bool won = !claimed_.load() && node_->alive() && claim();
    inspecting_.store(false, std::memory_order_release);
    if (won) end(*this, [this]() noexcept { node_->release(); });
    return won;
  }

  bool atexit() const noexcept { return atexit_.load(); }
  void atexit(bool value) noexcept { atexit_.store(value); }

  // By the node's operator delete, as its last access to the block: a sweep may free it now.
  void node_destroyed() noexcept { node_gone_.store(true, std::memory_order_release); }

 protected:
  finalizer() noexcept = default;
  ~finalizer() = default;

  weakref_node* node_ = nullptr;  // set once, before the finalizer is shared

 private:
  friend class finalizer_registry;

  virtual void call() = 0;
  virtual void drop_payload() noexcept = 0;
  virtual void destroy() noexcept = 0;  // destroys *this and frees the block

  bool claim() noexcept { return !claimed_.exchange(true); }

 protected:
  // run() and end() for `self`, a finalizer or its final type: the node calls them on the
  // latter, so that the function and the payload's destruction are called directly.
  // `drop_node()` lets go of the finalizer's handle to its node.
  template <class Self, class DropNode>
  static inline bool run(Self& self, DropNode drop_node);

  // By the claimer, which holds a reference to *this. The function, its arguments and the node
  // (with its weak_ptr to the object) go as soon as the finalizer is over, so that a finished
  // finalizer (kept by a handle, or by the registry until its next sweep) does not keep the
  // object's block allocated.
  template <class Self, class DropNode>
  static void end(Self& self, DropNode drop_node) noexcept {
    self.drop_payload();
    while (self.inspecting_.load()) std::this_thread::yield();  // a detach() reads the node
    drop_node();
  }

 private:
  // The registry's, changed only by pushes (before publishing) and under its walk lock: the
  // finalizer registered before this one, and the exit run's choice.
  finalizer* older_ = nullptr;
  std::atomic<std::uint32_t> refs_{2};  // the constructor's handle and the registry
  std::atomic<bool> claimed_{false};
  std::atomic<bool> node_gone_{false};
  std::atomic<bool> inspecting_{false};
  std::atomic<bool> atexit_{true};
  bool selected_for_exit_ = false;
};

// Every finalizer not yet swept, for the run at exit: an intrusive list, newest first, that
// creations push onto with one compare-exchange (no lock; the list's order is the creation
// order; a push depends on nothing but the head's value, so a head freed and reallocated
// meanwhile is harmless). Only a walk (a sweep, or the exit run) unlinks entries, under a lock
// that creations merely try: pushes only swap the head, so the rest of the list is the
// walker's alone. Deaths never touch the registry.
//
// The head word also counts pushes in its low bits (a finalizer's alignment leaves them free),
// so the push that wraps the count, once every `period` creations, is the one that counts
// periods and, when the list may have doubled since the last sweep, tries to sweep: amortized
// O(1) per creation, with no second atomic operation on the others.
class finalizer_registry {
 public:
  WEAKREF_PROCESS_WIDE static finalizer_registry& instance() noexcept {
    // Constant-initialized (no guard to check), and trivially destructible: usable during exit.
    static constinit finalizer_registry registry;
    return registry;
  }

  void add(finalizer& f) noexcept {
    if (hook_.load(std::memory_order_acquire) != hooked) [[unlikely]] {
      hook_exit();
    }
    auto head = head_.load(std::memory_order_relaxed);
    std::uintptr_t pushed = 0;
    do {
      f.older_ = newest(head);
      pushed = reinterpret_cast<std::uintptr_t>(&f) | ((head + 1) & count_mask);
    } while (!head_.compare_exchange_weak(head, pushed, std::memory_order_release,
                                          std::memory_order_relaxed));
    if ((pushed & count_mask) == 0 && periods_.fetch_add(1, std::memory_order_relaxed) + 1 >=
                                          sweep_at_.load(std::memory_order_relaxed)) {
      try_sweep();
    }
  }

  bool shut_down() const noexcept { return shut_down_.load(std::memory_order_acquire); }

  // CPython's finalize._exitfunc: select the alive atexit finalizers, run them newest first;
  // when one creates another finalizer, select again. Then no finalizer runs any more.
  // Allocates nothing (it is noexcept): the selection is a flag in each finalizer, and the
  // walk follows the list. It holds the walk lock throughout, so that no sweep unlinks the
  // entries it walks; creations meanwhile (from the finalizers it runs, or on other threads)
  // only skip their sweep.
  void run_at_exit() noexcept {
    while (walking_.exchange(true, std::memory_order_acquire)) std::this_thread::yield();
    finalizer* seen = nullptr;
    finalizer* next = nullptr;  // the newest finalizer still to be looked at
    for (bool first = true;; first = false) {
      auto* head = newest(head_.load(std::memory_order_acquire));
      if (first || head != seen) {  // `seen` is still listed, so its address is not reused
        sweep(head, true);
        seen = next = head;
      }
      while (next && !next->selected_for_exit_) next = next->older_;
      if (!next) break;
      auto* f = next;
      next = f->older_;
      try {
        f->run();
      } catch (...) {
        report_unraisable(std::current_exception(), "finalize at exit");
      }
    }
    shut_down_.store(true, std::memory_order_release);
    walking_.store(false, std::memory_order_release);
  }

 private:
  // Small, so that a sweep frees few blocks at once: glibc's per-thread cache takes 7 of a
  // size, and frees beyond it cost atomic operations (with 16, finalize.create_fire in
  // bench/make_shared_benchmark.cpp took a sixth longer than with 4).
  static constexpr std::size_t period = 4;
  static constexpr std::uintptr_t count_mask = period - 1;
  static_assert(alignof(finalizer) >= period);

  constexpr finalizer_registry() noexcept = default;

  // Registers the exit run at the first creation, as CPython's atexit.register in the first
  // finalize; if std::atexit fails, a later creation tries again.
  void hook_exit() noexcept {
    int state = unhooked;
    if (!hook_.compare_exchange_strong(state, hooking, std::memory_order_acquire)) return;
    bool registered = std::atexit([] { instance().run_at_exit(); }) == 0;
    hook_.store(registered ? hooked : unhooked, std::memory_order_release);
  }

  static finalizer* newest(std::uintptr_t head) noexcept {
    return reinterpret_cast<finalizer*>(head & ~count_mask);
  }

  void try_sweep() noexcept {
    if (walking_.exchange(true, std::memory_order_acquire)) return;  // someone walks already
    std::size_t kept = sweep(newest(head_.load(std::memory_order_acquire)), false);
    sweep_at_.store(
        periods_.load(std::memory_order_relaxed) + std::max<std::size_t>(1, kept / period),
        std::memory_order_relaxed);
    walking_.store(false, std::memory_order_release);
  }

  // Under the walk lock: unlinks the finalizers whose node is gone, after `head` (which stays:
  // pushes compare-exchange it), and drops the registry's references to them; returns how many
  // stay. With `select`, marks those that the exit run is to run.
  static std::size_t sweep(finalizer* head, bool select) noexcept {
    std::size_t kept = 0;
    for (finalizer *prev = nullptr, *f = head; f;) {
      auto* older = f->older_;
      // Its node gone, a finalizer is over (it ended before releasing its node) and nothing
      // but its handles uses its block: no user code is left to run in it.
      if (!f->node_gone_.load(std::memory_order_acquire) || !prev) {
        if (select) f->selected_for_exit_ = f->alive() && f->atexit();
        prev = f;
        ++kept;
      } else {
        prev->older_ = older;
        f->release();
      }
      f = older;
    }
    return kept;
  }

  std::atomic<std::uintptr_t> head_{0};   // the newest finalizer | pushes mod period
  std::atomic<std::size_t> periods_{0};   // pushes / period
  std::atomic<std::size_t> sweep_at_{1};  // in periods
  std::atomic<bool> walking_{false};      // a sweep or an exit run walks the list
  std::atomic<bool> shut_down_{false};
  static constexpr int unhooked = 0, hooking = 1, hooked = 2;
  std::atomic<int> hook_{unhooked};
};
static_assert(std::is_trivially_destructible_v<finalizer_registry>);

template <class Self, class DropNode>
inline bool finalizer::run(Self& self, DropNode drop_node) {
  if (!self.claim()) return false;
  struct ender {
    Self& self;
    DropNode& drop_node;
    ~ender() { end(self, drop_node); }
  } guard{self, drop_node};
  if (finalizer_registry::instance().shut_down()) return false;  // CPython: _shutdown
  self.call();
  return true;
}

// The node of a finalizer: its death callback, at the start of the block, with the state after
// it. Its last handle destroys it (dropping its weak_ptr to the object); its operator delete
// then tells the state instead of freeing anything: the state's last reference frees the block.
template <class State>
class finalizer_node final : public weakref_node {
 public:
  finalizer_node(object_header& header, std::weak_ptr<const void> owner) noexcept
      : weakref_node(header, std::move(owner), node_kind::other, true) {
    fire_keeps_handle_ = true;  // fire() lets go of the death's handle itself
  }

  static void* operator new(std::size_t) = delete;  // made in place by State::create only
  static void operator delete(void* block) noexcept { State::of_block(block)->node_destroyed(); }

 private:
  // At the death, which unlinked the node and took a handle for this call. When the death
  // claims the finalizer, it lets go of that handle with the finalizer's own: if the two are
  // all there are (no getweakrefs handle), nobody can take another, and the node is deleted
  // outright, without an atomic operation. Otherwise (lost the claim) it drops the death's.
  // The node may be gone when the function's exception arrives, so it is reported here: the
  // death's loop would ask the node where it came from.
  void fire() override {
    bool dropped = false;
    try {
      State::run_final(*State::of_block(this), [this, &dropped]() noexcept {
        dropped = true;
        if (handles_are(2)) {
          delete this;
        } else {
          release();
          release();
        }
      });
    } catch (...) {
      report_unraisable(std::current_exception(), "finalize");
    }
    if (!dropped) release();
  }
  std::string_view where() const noexcept override { return "finalize"; }
};

// One allocation: [finalizer_node][payload_finalizer: the state, func and args].
template <class F, class... Args>
class payload_finalizer final : public finalizer {
  using node_type = finalizer_node<payload_finalizer>;

 public:
  // Makes the block and registers the finalizer. Only the allocation and the copies of func
  // and args may throw, before anything is shared: then nothing is left behind.
  template <class G, class... A>
  static finalizer* create(object_header& header, std::weak_ptr<const void> owner, G&& func,
                           A&&... args) {
    void* block = allocate();
    payload_finalizer* state = nullptr;
    try {
      state = ::new (reinterpret_cast<void*>(address(block) + state_offset()))
          payload_finalizer(std::forward<G>(func), std::forward<A>(args)...);
    } catch (...) {
      deallocate(block);
      throw;
    }
    auto* node = ::new (block) node_type(header, std::move(owner));
    state->node_ = node;
    // Linked before it is registered: from then on an exit run on another thread may run the
    // finalizer and release its node at once, so the node must be linked by then (registered
    // first, the node could be freed before this linked it). Until then only this function can
    // reach the finalizer, and the caller's shared_ptr keeps the object from dying.
    header.link(node);
    finalizer_registry::instance().add(*state);
    return state;
  }

  template <class DropNode>
  static bool run_final(payload_finalizer& self, DropNode drop_node) {
    return run(self, drop_node);
  }

  static payload_finalizer* of_block(void* block) noexcept {
    return std::launder(reinterpret_cast<payload_finalizer*>(address(block) + state_offset()));
  }

 private:
  template <class G, class... A>
  explicit payload_finalizer(G&& func, A&&... args)
      : payload_(std::forward<G>(func), std::forward<A>(args)...) {}
  ~payload_finalizer() {}  // the payload is gone by then: end() drops it

  friend class finalizer;

  void call() override {
    std::apply([](F& func, Args&... args) { std::invoke(func, args...); }, payload_);
  }
  void drop_payload() noexcept override { std::destroy_at(&payload_); }
  void destroy() noexcept override {
    void* block = reinterpret_cast<void*>(address(this) - state_offset());
    this->~payload_finalizer();
    deallocate(block);
  }

  static std::uintptr_t address(const void* p) noexcept {
    return reinterpret_cast<std::uintptr_t>(p);
  }
  static constexpr std::size_t alignment() noexcept {
    return std::max(alignof(node_type), alignof(payload_finalizer));
  }
  static constexpr std::size_t state_offset() noexcept {
    return (sizeof(node_type) + alignof(payload_finalizer) - 1) / alignof(payload_finalizer) *
           alignof(payload_finalizer);
  }
  static constexpr std::size_t size() noexcept {
    return state_offset() + sizeof(payload_finalizer);
  }
  static void* allocate() {
    if constexpr (alignment() > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      return ::operator new(size(), std::align_val_t(alignment()));
    } else {
      return ::operator new(size());
    }
  }
  static void deallocate(void* block) noexcept {  // unsized: clang declares sized ones on demand
    if constexpr (alignment() > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      ::operator delete(block, std::align_val_t(alignment()));
    } else {
      ::operator delete(block);
    }
  }

  union {  // destroyed by drop_payload(), exactly once: every finalizer ends before it is freed
    std::tuple<F, Args...> payload_;
  };
};

}  // namespace weakref::detail
