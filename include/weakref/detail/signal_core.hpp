// weakref/detail/signal_core.hpp — the state behind weakref::signal: the slots (one heap node
// each, shared with their connections) and the copy-on-write slot lists that emissions walk.
//
// Ownership (all counts are intrusive):
//   signal ──1──> signal_core <──1── each slot_list, each slot
//   signal_core ──> the current slot_list ──1 per entry──> slot
//   connection ──1──> slot
// The core is freed when the signal, every list and every slot are gone, so a slot or a
// connection may outlive its signal, and a slot may destroy the signal during an emission (the
// list that emission pinned keeps the core alive until the emission ends).
//
// Emission pins the current list (a few instructions under a spin lock; unpinning is one atomic
// add) and walks a prefix of it that never changes while it is pinned: connect appends past the
// end (publishing the new size with release); a disconnection of the last entries trims them in
// place, but only while no emission pins the list (checked under the spin lock, which keeps new
// emissions out meanwhile); everything else (pruning, growing, disconnect_all) publishes a new
// list and retires the old one, which its last pinning emission frees.
//
// User code (a callable's destructor, run when a slot's last reference goes) may destroy the
// signal, the connection and the slot that led to it. So every path that releases slots does
// it outside the locks and last, or holds its own reference to the core meanwhile (trim).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <utility>

namespace weakref::detail {

class signal_core;

// One connected slot: a callable, or an object and what to call on it. Never changes after
// construction except `connected_`, which goes false once, on disconnect or the object's death.
class signal_slot_base {
 public:
  signal_slot_base(const signal_slot_base&) = delete;
  signal_slot_base& operator=(const signal_slot_base&) = delete;

  virtual void retain() noexcept = 0;
  virtual void release() noexcept = 0;

  bool connected() const noexcept {
    return connected_.load(std::memory_order_acquire) && !expired();
  }
  // The connection's disconnect(): idempotent, any thread.
  inline void disconnect() noexcept;

  // The emission's test: a relaxed load (a disconnection that happens-before the test is seen).
  bool connected_now() const noexcept { return connected_.load(std::memory_order_relaxed); }

  // Disconnects a slot that never made it into a list (connect failed): no bookkeeping.
  void abandon() noexcept {
    connected_.store(false, std::memory_order_relaxed);
    on_disconnect();
  }

 protected:
  explicit signal_slot_base(signal_core& core) noexcept;
  virtual ~signal_slot_base();

  // Called once, by the thread that disconnected the slot explicitly.
  virtual void on_disconnect() noexcept {}
  // Whether the slot's object is dead (a tracked slot whose death is still being reported).
  virtual bool expired() const noexcept { return false; }
  // The object died: called once, from its death hook.
  inline void disconnect_by_death() noexcept;

 private:
  friend class signal_core;
  template <class...>
  friend class signal_slot;

  std::atomic<bool> connected_{true};
  signal_core* core_;
};

// An immutable-prefix array of slots: [0, size) never changes while an emission pins the list.
class slot_list {
 public:
  // Slot array right after the list, in the same allocation.
  signal_slot_base** slots() noexcept { return reinterpret_cast<signal_slot_base**>(this + 1); }
  std::size_t size(std::memory_order order) const noexcept { return size_.load(order); }

 private:
  friend class signal_core;
  slot_list(signal_core& core, std::size_t capacity) noexcept : capacity_(capacity), core_(&core) {}

  // Emissions that pinned this list (guarded by the core's spin lock) and, counted apart so
  // that unpinning takes no lock, the unpins minus, once the list is retired, its final pins:
  // the list is unpinned when the two are equal, and the retired list is freed by whoever
  // brings `unpins_` to zero (the retiring writer or the last unpin).
  std::size_t pins_ = 0;
  std::atomic<std::size_t> unpins_{0};
  std::atomic<std::size_t> size_{0};
  std::size_t capacity_;
  signal_core* core_;  // holds a reference
};
static_assert(alignof(slot_list) >= alignof(signal_slot_base*));

class signal_core {
 public:
  signal_core() noexcept = default;
  signal_core(const signal_core&) = delete;
  signal_core& operator=(const signal_core&) = delete;

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // The current list, pinned (or null when no slot was connected since the last clear):
  // the caller walks it, then calls unpin.
  slot_list* pin() noexcept {
    slot_list* list = lock();
    if (list) ++list->pins_;
    unlock(list);
    return list;
  }
  // Ends a walk. May free `list` (if it was retired meanwhile) and then the core itself.
  void unpin(slot_list* list) noexcept {
    if (list->unpins_.fetch_add(1, std::memory_order_acq_rel) + 1 == 0) destroy(list);
  }

  // Live (connected) slots. Exact, except while an object of a tracked slot is dying.
  std::size_t size() const noexcept { return live_.load(std::memory_order_acquire); }

  // Appends `slot` (the list takes a new reference). Throws std::bad_alloc (nothing changed).
  void add(signal_slot_base& slot) {
    slot_list* retired = nullptr;
    {
      std::lock_guard guard(mutex_);
      slot_list* list = current();
      std::size_t n = list ? list->size(std::memory_order_relaxed) : 0;
      if (!list || n == list->capacity_) {
        // Grow and drop the disconnected slots at once: room for twice the live ones.
        std::size_t live = live_.load(std::memory_order_relaxed);
        retired = rebuild(live < 4 ? 8 : 2 * live + 2);  // may throw: nothing changed yet
        list = current();
        n = list->size(std::memory_order_relaxed);
      }
      slot.retain();
      list->slots()[n] = &slot;
      list->size_.store(n + 1, std::memory_order_release);  // emissions started later see it
      listed_.store(n + 1, std::memory_order_relaxed);
      last_.store(&slot, std::memory_order_relaxed);
      live_.fetch_add(1, std::memory_order_release);
    }
    if (retired) destroy(retired);
  }

  // Disconnects every slot; with `closing`, the signal is being destroyed.
  void disconnect_all(bool closing) noexcept {
    slot_list* retired = nullptr;
    {
      std::lock_guard guard(mutex_);
      closed_ = closing;
      slot_list* list = current();
      if (!list) return;
      std::size_t n = list->size(std::memory_order_relaxed);
      for (std::size_t i = 0; i < n; ++i) {
        signal_slot_base* slot = list->slots()[i];
        if (slot->connected_.exchange(false, std::memory_order_acq_rel)) {
          slot->on_disconnect();
          live_.fetch_sub(1, std::memory_order_release);
        }
      }
      retired = publish(nullptr);
      listed_.store(0, std::memory_order_relaxed);
      last_.store(nullptr, std::memory_order_relaxed);
    }
    if (retired) destroy(retired);  // outside the lock: may destroy callables (user code)
  }

 private:
  friend class signal_slot_base;

  ~signal_core() = default;

  static constexpr std::uintptr_t locked_bit = 1;

  // Whether the current list holds enough disconnected entries to rebuild it: more than half
  // the live ones plus 16. Emissions then walk at most 1.5 entries per live slot, and the
  // rebuilds cost amortized O(1) (three copies) per disconnection.
  static constexpr std::size_t slack = 16;
  static bool worth_pruning(std::size_t listed, std::size_t live) noexcept {
    return listed > live + live / 2 + slack;
  }

  // A slot went from connected to disconnected. Trims the list's dead tail if `slot` was its
  // last entry, and drops all the dead entries once worth_pruning; never throws.
  void slot_gone(const signal_slot_base& slot) noexcept {
    std::size_t live = live_.fetch_sub(1, std::memory_order_acq_rel) - 1;
    if (last_.load(std::memory_order_relaxed) != &slot) return prune(live);
    bool held = trim();
    prune(live_.load(std::memory_order_relaxed));
    if (held) release();  // last: it may free the core
  }

  // Drops all the dead entries once worth_pruning.
  void prune(std::size_t live) noexcept {
    if (!worth_pruning(listed_.load(std::memory_order_relaxed), live)) return;
    slot_list* retired = nullptr;
    {
      std::lock_guard guard(mutex_);
      slot_list* list = current();
      live = live_.load(std::memory_order_relaxed);
      if (closed_ || !list || !worth_pruning(list->size(std::memory_order_relaxed), live)) return;
      try {
        retired = rebuild(live < 4 ? 8 : 2 * live);
      } catch (const std::bad_alloc&) {
        return;  // keep the dead entries; a later disconnection tries again
      }
    }
    if (retired) destroy(retired);
  }

  // Drops the disconnected entries at the end of the current list, in place, once there are
  // more than `slack` of them (pruning's slack), unless an emission pins the list (then pruning
  // gets them later). Slots connected last and gone first (short-lived listeners, batches of
  // scoped_connections, objects dying young) are so freed in O(1) each instead of lingering
  // until a rebuild copies the whole list: their memory is reused while it is still hot.
  // Returns whether it released any: then it holds a reference to the core, which the caller
  // releases once done with it (a callable's destructor may drop every other one: the signal's,
  // and the disconnecting slot's own).
  [[nodiscard]] bool trim() noexcept {
    constexpr std::size_t chunk = 64;
    signal_slot_base* gone[chunk];  // released outside the lock (may run a callable's dtor)
    bool held = false;
    for (;;) {
      std::size_t k = 0;
      {
        std::lock_guard guard(mutex_);
        slot_list* list = current();
        if (!list) return held;
        std::size_t n = list->size(std::memory_order_relaxed);
        signal_slot_base** slots = list->slots();
        // A slot once disconnected stays so: these entries are dead for good.
        while (k < chunk && k < n && !slots[n - 1 - k]->connected_.load(std::memory_order_relaxed))
          ++k;
        if (k <= slack) return held;
        slot_list* head = lock();
        bool unpinned = list->pins_ == list->unpins_.load(std::memory_order_acquire);
        if (unpinned) list->size_.store(n - k, std::memory_order_relaxed);
        unlock(head);  // the next pin sees the new size
        if (!unpinned) return held;
        for (std::size_t i = 0; i < k; ++i) gone[i] = slots[n - k + i];
        listed_.store(n - k, std::memory_order_relaxed);
        last_.store(n > k ? slots[n - k - 1] : nullptr, std::memory_order_relaxed);
        if (!held) retain();
        held = true;
      }
      for (std::size_t i = 0; i < k; ++i) gone[i]->release();
      if (k < chunk) return held;
    }
  }

  // The current list; only writers (under mutex_) call this, and only they change it.
  slot_list* current() const noexcept {
    return reinterpret_cast<slot_list*>(head_.load(std::memory_order_relaxed) & ~locked_bit);
  }

  // Publishes a copy of the current list's connected slots, with room for `capacity`; returns
  // the old list if the caller must free it (no emission pins it). Called under mutex_.
  // When no emission pins the old list, the new one takes over the old one's references to the
  // slots it copies (no atomic operation on each slot, whose memory is often cold); otherwise it
  // takes its own.
  slot_list* rebuild(std::size_t capacity) {
    void* memory = ::operator new(sizeof(slot_list) + capacity * sizeof(signal_slot_base*));
    auto* fresh = new (memory) slot_list(*this, capacity);
    retain();
    std::size_t n = 0;
    slot_list* list = current();
    if (list) {
      std::size_t size = list->size(std::memory_order_relaxed);
      for (std::size_t i = 0; i < size && n < capacity; ++i) {
        signal_slot_base* slot = list->slots()[i];
        if (!slot->connected_.load(std::memory_order_acquire)) continue;
        fresh->slots()[n++] = slot;
      }
    }
    fresh->size_.store(n, std::memory_order_relaxed);
    listed_.store(n, std::memory_order_relaxed);
    last_.store(n ? fresh->slots()[n - 1] : nullptr, std::memory_order_relaxed);
    if (list) {
      slot_list* head = lock();
      if (list->pins_ == list->unpins_.load(std::memory_order_acquire)) {
        unlock(fresh);  // nobody walks `list` and nobody can pin it any more: it is ours
        // Keep in `list` only the entries not copied (in order: `fresh` is a subsequence of
        // it, each slot listed once), whose references its destruction drops.
        std::size_t size = list->size(std::memory_order_relaxed);
        std::size_t kept = 0;
        for (std::size_t i = 0, j = 0; i < size; ++i) {
          signal_slot_base* slot = list->slots()[i];
          if (j < n && fresh->slots()[j] == slot) {
            ++j;
          } else {
            list->slots()[kept++] = slot;
          }
        }
        list->size_.store(kept, std::memory_order_relaxed);
        return list;
      }
      unlock(head);
    }
    for (std::size_t i = 0; i < n; ++i) fresh->slots()[i]->retain();
    return publish(fresh);
  }

  // Makes `fresh` current; returns the old list if nobody pins it (the caller frees it after
  // releasing mutex_); otherwise its last unpin frees it.
  slot_list* publish(slot_list* fresh) noexcept {
    slot_list* old = lock();
    std::size_t pins = old ? old->pins_ : 0;  // final: only the current list gets pinned
    unlock(fresh);
    // The unpins so far minus the pins: zero if every emission is done with it; otherwise the
    // unpin that brings it to zero frees it.
    bool unpinned = old && old->unpins_.fetch_sub(pins, std::memory_order_acq_rel) == pins;
    return unpinned ? old : nullptr;
  }

  // Frees a retired list: releases its slots (which may run a callable's destructor, so never
  // under a lock) and its reference to the core.
  static void destroy(slot_list* list) noexcept {
    std::size_t n = list->size(std::memory_order_relaxed);
    signal_core* core = list->core_;
    for (std::size_t i = 0; i < n; ++i) list->slots()[i]->release();
    list->~slot_list();
    ::operator delete(list);
    core->release();
  }

  // Spin lock on bit 0 of head_: it only guards reading the head with a pin count change, a
  // few instructions, so spinning (then yielding) beats a kernel mutex on every emission.
  slot_list* lock() noexcept {
    auto state = head_.load(std::memory_order_relaxed);
    for (unsigned spins = 0;; ++spins) {
      if ((state & locked_bit) == 0 &&
          head_.compare_exchange_weak(state, state | locked_bit, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
        return reinterpret_cast<slot_list*>(state);
      }
      if (spins >= 64) std::this_thread::yield();
      state = head_.load(std::memory_order_relaxed);
    }
  }
  void unlock(slot_list* head) noexcept {
    head_.store(reinterpret_cast<std::uintptr_t>(head), std::memory_order_release);
  }

  std::atomic<std::size_t> refs_{1};
  std::atomic<std::uintptr_t> head_{0};  // the current slot_list | locked_bit
  std::atomic<std::size_t> live_{0};     // connected slots
  std::atomic<std::size_t> listed_{0};   // entries in the current list, disconnected included
  std::atomic<const signal_slot_base*> last_{nullptr};  // the current list's last entry (a hint)
  std::mutex mutex_;     // serializes the writers: add, rebuild, disconnect_all
  bool closed_ = false;  // the signal is gone: no more pruning (under mutex_)
};

inline signal_slot_base::signal_slot_base(signal_core& core) noexcept : core_(&core) {
  core.retain();
}

inline signal_slot_base::~signal_slot_base() { core_->release(); }

inline void signal_slot_base::disconnect() noexcept {
  if (!connected_.exchange(false, std::memory_order_acq_rel)) return;
  on_disconnect();
  core_->slot_gone(*this);
}

inline void signal_slot_base::disconnect_by_death() noexcept {
  if (connected_.exchange(false, std::memory_order_acq_rel)) core_->slot_gone(*this);
}

// A handle on a slot: one reference.
class slot_ref {
 public:
  slot_ref() noexcept = default;
  explicit slot_ref(signal_slot_base* adopted) noexcept : slot_(adopted) {}
  slot_ref(const slot_ref& other) noexcept : slot_(other.slot_) {
    if (slot_) slot_->retain();
  }
  slot_ref(slot_ref&& other) noexcept : slot_(std::exchange(other.slot_, nullptr)) {}
  slot_ref& operator=(slot_ref other) noexcept {
    std::swap(slot_, other.slot_);
    return *this;
  }
  ~slot_ref() {
    if (slot_) slot_->release();
  }
  signal_slot_base* get() const noexcept { return slot_; }
  signal_slot_base* operator->() const noexcept { return slot_; }
  explicit operator bool() const noexcept { return slot_ != nullptr; }

 private:
  signal_slot_base* slot_ = nullptr;
};

}  // namespace weakref::detail
