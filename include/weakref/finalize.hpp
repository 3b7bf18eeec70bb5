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

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "weakref/detail/handle_access.hpp"
#include "weakref/detail/object_header.hpp"
#include "weakref/detail/visibility.hpp"
#include "weakref/errors.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/unraisable.hpp"

namespace weakref {
namespace detail {

// func(args...) as finalize stores and calls them: decayed copies, called as lvalues.
template <class F, class... Args>
concept callable_with_copies = std::invocable < std::decay_t<F>
&, std::decay_t<Args>&... > ;

class finalizer_registry;

// The state every handle, the registry and the object's death callback share.
class finalizer {
 public:
  finalizer() = default;
  finalizer(const finalizer&) = delete;
  finalizer& operator=(const finalizer&) = delete;
  virtual ~finalizer() = default;

  bool alive() const noexcept { return !claimed_.load(std::memory_order_acquire); }

  // Runs the function if this call is the one that ends the finalizer; returns whether it ran.
  // The caller holds a reference to *this.
  inline bool run();

  // Only while the object lives: once it is dying, the finalizer is a callback on its way
  // (CPython's detach() answers None then, and the function still runs).
  // A collection's garbage counts as dying from its condemnation on (gc.hpp).
  bool detach() noexcept {
    lock_object();
    // `object` keeps `header` allocated while it is set; release() empties it.
    bool dying = object.expired() || (header->tracked() && !gc_admits(*header, false));
    bool won = !dying && claim();
    unlock_object();
    if (won) release();
    return won;
  }

  // Ends a finalizer that was never handed out (its constructor failed): a handle to its node
  // that getweakrefs gave another thread meanwhile can no longer run it.
  void abandon() noexcept {
    if (claim()) release();
  }

  std::atomic<bool> atexit{true};
  // Set once, before the finalizer is shared; emptied when the finalizer is over, so that a
  // finished finalizer (kept by a handle, or by the registry until its next sweep) does not
  // keep the dead object's block allocated. Guarded by lock_object() from then on.
  std::weak_ptr<const void> object;
  const object_header* header = nullptr;  // the object's, set once (`object` keeps it allocated)
  std::uint64_t sequence = 0;             // creation order, set by the registry
  bool selected_for_exit = false;         // the exit run's choice; under the registry's mutex
  node_handle node;  // the death callback; touched only by the claimer once created

 private:
  virtual void call() = 0;
  virtual void drop_payload() noexcept = 0;

  bool claim() noexcept { return !claimed_.exchange(true, std::memory_order_acq_rel); }
  // The function, its arguments, the death callback and the weak reference to the object go as
  // soon as the finalizer is over.
  void release() noexcept {
    drop_payload();
    node.reset();
    std::weak_ptr<const void> gone;
    lock_object();
    gone.swap(object);
    unlock_object();
  }  // `gone` may free the object's block: outside the lock

  // A spin lock for `object` (detach() reads it on any thread while the claimer empties it);
  // held for a few loads, never while user code runs.
  void lock_object() noexcept {
    while (object_locked_.exchange(true, std::memory_order_acquire)) std::this_thread::yield();
  }
  void unlock_object() noexcept { object_locked_.store(false, std::memory_order_release); }

  std::atomic<bool> claimed_{false};
  std::atomic<bool> object_locked_{false};
};

template <class F, class... Args>
class payload_finalizer final : public finalizer {
 public:
  template <class G, class... A>
  explicit payload_finalizer(G&& func, A&&... args)
      : payload_(std::in_place, std::forward<G>(func), std::forward<A>(args)...) {}

 private:
  void call() override {
    std::apply([](F& func, Args&... args) { std::invoke(func, args...); }, *payload_);
  }
  void drop_payload() noexcept override { payload_.reset(); }

  std::optional<std::tuple<F, Args...>> payload_;
};

// Every finalizer still alive, for the run at exit. Dead entries are swept when the registry
// has doubled since the last sweep, so deaths never take this process-wide lock.
class finalizer_registry {
 public:
  WEAKREF_PROCESS_WIDE static finalizer_registry& instance() {
    static auto* registry = new finalizer_registry;  // never destroyed: used during exit
    return *registry;
  }

  void add(std::shared_ptr<finalizer> f) {
    std::lock_guard lock(mutex_);
    if (!exit_hook_registered_) {
      exit_hook_registered_ = std::atexit([] { instance().run_at_exit(); }) == 0;
    }
    if (entries_.size() >= sweep_at_) {
      std::erase_if(entries_, [](const auto& e) { return !e->alive(); });
      sweep_at_ = std::max<std::size_t>(64, 2 * entries_.size());
    }
    f->sequence = next_sequence_++;
    entries_.push_back(std::move(f));
    ++generation_;
  }

  bool shut_down() const noexcept { return shut_down_.load(std::memory_order_acquire); }

  // CPython's finalize._exitfunc: select the alive atexit finalizers, run them newest first;
  // when one creates another finalizer, select again. Then no finalizer runs any more.
  // Allocates nothing (it is noexcept): the selection is a flag in each finalizer, and the
  // walk an index into the entries, from the newest down.
  void run_at_exit() noexcept {
    std::uint64_t seen = 0;
    std::size_t next = 0;  // entries_[0, next) are still to be walked
    for (bool first = true;; first = false) {
      std::shared_ptr<finalizer> f;  // a copy: the lock is not held while it runs
      {
        std::lock_guard lock(mutex_);
        if (first || generation_ != seen) {
          for (auto& e : entries_) e->selected_for_exit = e->alive() && e->atexit.load();
          next = entries_.size();
          seen = generation_;
        }
        while (next > 0 && !f) {
          auto& e = entries_[--next];
          if (e->selected_for_exit) f = e;
        }
      }
      if (!f) break;
      try {
        f->run();
      } catch (...) {
        report_unraisable(std::current_exception(), "finalize at exit");
      }
    }
    shut_down_.store(true, std::memory_order_release);
  }

 private:
  std::mutex mutex_;
  std::vector<std::shared_ptr<finalizer>> entries_;  // in creation order
  std::size_t sweep_at_ = 64;
  std::uint64_t next_sequence_ = 0;
  std::uint64_t generation_ = 0;
  bool exit_hook_registered_ = false;
  std::atomic<bool> shut_down_{false};
};

inline bool finalizer::run() {
  if (!claim()) return false;
  struct releaser {
    finalizer* f;
    ~releaser() { f->release(); }
  } guard{this};
  if (finalizer_registry::instance().shut_down()) return false;  // CPython: _shutdown
  call();
  return true;
}

}  // namespace detail

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
           Args&&... args) requires detail::callable_with_copies<F, Args...> {
    auto& header = detail::header_of(obj, "weakref::finalize");
    if (detail::is_empty_callable(func)) {
      throw type_error("weakref::finalize: the function is empty (it could never run)");
    }
    auto state =
        std::make_shared<detail::payload_finalizer<std::decay_t<F>, std::decay_t<Args>...>>(
            std::forward<F>(func), std::forward<Args>(args)...);
    state->object = obj;
    state->header = &header;
    auto fire = [state = std::shared_ptr<detail::finalizer>(state)](detail::weakref_node&) {
      state->run();
    };
    auto* node = new detail::callback_node<decltype(fire)>(header, std::weak_ptr<const void>(obj),
                                                           detail::node_kind::other, "finalize",
                                                           std::move(fire));
    state->node = detail::node_handle(node);  // the finalizer keeps its callback registered
    // Linked before it is registered: from then on an exit run on another thread may run the
    // finalizer and release its node at once, so the node must be linked by then (registered
    // first, the node could be freed before this constructor linked it). Until then only this
    // constructor can reach the finalizer, and `obj` keeps the object from dying.
    header.link(node);
    try {
      detail::finalizer_registry::instance().add(state);
    } catch (...) {
      state->abandon();  // unlinks the node; breaks the state -> node -> callback -> state cycle
      throw;
    }
    state_ = std::move(state);
  }

  // Neither run nor detached yet (and the object has not died).
  bool alive() const noexcept { return state_ && state_->alive(); }

  // Cancels the finalizer; true if it was alive. While its object is dying (inside another of
  // its callbacks) it is too late: returns false, and the function still runs.
  bool detach() noexcept { return state_ && state_->detach(); }

  // Runs func(args...) now if alive; true if it ran. Exceptions from func propagate.
  bool operator()() { return state_ && state_->run(); }

  // Whether it runs at exit if still alive; false once it is dead (setting is then ignored).
  bool atexit() const noexcept { return alive() && state_->atexit.load(); }
  void atexit(bool value) noexcept {
    if (alive()) state_->atexit.store(value);
  }

  friend bool operator==(const finalize& a, const finalize& b) noexcept {
    return a.state_ == b.state_;
  }

 private:
  std::shared_ptr<detail::finalizer> state_;
};

}  // namespace weakref
