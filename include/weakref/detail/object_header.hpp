// weakref/detail/object_header.hpp — the per-object state behind every weak reference:
// the list of weak reference objects (nodes) and the death hook that expires them.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string_view>
#include <thread>
#include <vector>

#include "weakref/unraisable.hpp"

namespace weakref::detail {

class object_header;
class node_handle;

// Room for one more push_back, growing geometrically (reserve(size() + 1) alone would not): a
// push_back after it cannot throw.
template <class T>
void reserve_one(std::vector<T>& v) {
  if (v.size() == v.capacity()) v.reserve(std::max<std::size_t>(8, v.size() * 2));
}

// Defined with the collector (gc_registry.hpp): whether a collection leaves the tracked object
// of `header` alive (waiting out a decision under way) or condemned it; `locked` says whether
// the caller holds a strong reference it has just taken.
inline bool gc_admits(const object_header& header, bool locked) noexcept;
// Also there: a lock of the tracked object of `header`, by `object`. Null if it died or a
// collection condemned it; never runs the object's destructor (see gc_late_owners).
inline std::shared_ptr<const void> gc_lock(const object_header& header,
                                           const std::weak_ptr<const void>& object) noexcept;

// What a weak reference object is, for canonical sharing (CPython: callback-less refs and
// proxies are shared per object; everything else is its own object).
enum class node_kind : unsigned char { canonical_ref, canonical_proxy, other };

// weakref_node: one weak reference object (CPython's PyWeakReference). Every copy of a
// ref/proxy/weak_method handle shares one node and counts in `handles_`; the object's list
// links the node without owning it. When the last handle goes, the node unlinks itself.
// Aligned to 8: the header keeps three flags in the low bits of a node pointer.
class alignas(8) weakref_node {
 public:
  weakref_node(object_header& header, std::weak_ptr<const void> owner, node_kind kind,
               bool has_callback) noexcept
      : kind_(kind), callback_pending_(has_callback), header_(&header), owner_(std::move(owner)) {}
  weakref_node(const weakref_node&) = delete;
  weakref_node& operator=(const weakref_node&) = delete;
  virtual ~weakref_node() = default;

  void retain() noexcept { handles_.fetch_add(1, std::memory_order_relaxed); }

  // Takes a handle unless the last one is already gone (the node is being destroyed).
  bool try_retain() noexcept {
    auto n = handles_.load(std::memory_order_relaxed);
    while (n != 0) {
      if (handles_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }

  inline void release() noexcept;
  object_header& header() const noexcept { return *header_; }

  // The object, or null once it died or a collection found it garbage (condemned).
  inline std::shared_ptr<const void> lock() const noexcept;
  inline bool alive() const noexcept;
  // Python: r.__callback__ is not None. Cleared when the object dies, before any callback.
  bool has_callback() const noexcept { return callback_pending_.load(std::memory_order_acquire); }
  // The object's identity: stable before and after death, never reused while a node lives
  // (the node's weak_ptr keeps the control block, and so the header, allocated).
  const object_header* owner_id() const noexcept { return header_; }

 private:
  friend class object_header;
  friend class gc_collector;
  [[gnu::noinline]] std::shared_ptr<const void> lock_tracked() const noexcept {
    return gc_lock(*header_, owner_);
  }
  // Runs the callback. Called once, after every weak reference to the object is dead.
  virtual void fire() {}
  virtual std::string_view where() const noexcept { return "weakref callback"; }

  std::atomic<std::size_t> handles_{1};
  weakref_node* prev_ = nullptr;  // guarded by the header's lock while linked_
  weakref_node* next_ = nullptr;  // ... and reused as the dispatch chain once unlinked
  node_kind kind_;
  // Written under the header's lock; read without it by release(), which deletes a node that a
  // death has unlinked without taking the lock (detach_all stores false as its last access).
  std::atomic<bool> linked_{false};
  std::atomic<bool> callback_pending_;

 protected:
  // Whether `n` handles are all there are. Exact only when nobody can take a new one: the
  // node is unlinked and the caller holds some of its handles. Acquires, so that the other
  // handles' last uses happen before whatever the caller does next (delete the node).
  bool handles_are(std::size_t n) const noexcept {
    return handles_.load(std::memory_order_acquire) == n;
  }
  // The dispatch chain's link, free once fire() runs (fire_chain() has moved past the node): an
  // entry node chains its container's inbox through it.
  weakref_node*& fired_link() noexcept { return next_; }
  weakref_node* fired_link() const noexcept { return next_; }

  // fire() keeps the extra handle that detach_all() took for the call (an entry node hands it
  // to its container's inbox), so fire_chain() does not release it: two atomic operations
  // fewer per entry a death removes.
  bool fire_keeps_handle_ = false;
  // A weak container entry's flags (table_node.hpp), here where they fill padding.
  bool removed = false;  // removed while an iterator was alive; freed when the last one goes
  // Unlinked from its object when removed (its only handle the container's): it no longer
  // counts in getweakrefcount, and never posts.
  bool unlinked_ = false;
  bool owns_inbox_ref_ = false;  // retire() or a late post may still use the inbox

 private:
  // Last, and together: a weak container's lookup reads both (lock()), then the key that
  // follows them in its entry (table_node.hpp).
  object_header* header_;
  std::weak_ptr<const void> owner_;
};

// A node whose callback is `fire_`, a callable taking the node (which it may wrap in a handle).
template <class Fire>
class callback_node final : public weakref_node {
 public:
  callback_node(object_header& header, std::weak_ptr<const void> owner, node_kind kind,
                std::string_view where, Fire fire)
      : weakref_node(header, std::move(owner), kind, true), where_(where), fire_(std::move(fire)) {}

 private:
  void fire() override { fire_(*this); }
  std::string_view where() const noexcept override { return where_; }

  std::string_view where_;
  Fire fire_;
};

// The first address at or after `p` aligned to `align` (a power of two). Pointer arithmetic,
// not an integer cast back to a pointer, so that the result keeps `p`'s provenance.
inline std::byte* align_up(std::byte* p, std::size_t align) noexcept {
  auto misalignment = reinterpret_cast<std::uintptr_t>(p) & (align - 1);
  return misalignment ? p + (align - misalignment) : p;
}

// How an object whose allocator has its own destroy() is destroyed: weakref::allocate_shared
// places this hook, and a copy of the allocator, after the object (block_allocator.hpp), since
// the death hook knows only T. std::allocate_shared destroys with allocator_traits::destroy too.
struct destroy_hook {
  void (*destroy)(destroy_hook& self, void* object) noexcept;

  // The hook of `object`: the first suitably aligned address after it.
  template <class T>
  static destroy_hook& after(T* object) noexcept {
    auto* at = align_up(reinterpret_cast<std::byte*>(object) + sizeof(T), alignof(destroy_hook));
    return *std::launder(reinterpret_cast<destroy_hook*>(at));
  }
};

// object_header: the deleter of every object made by weakref::make_shared, so std::shared_ptr
// stores it in the control block and std::get_deleter finds it from any shared_ptr that shares
// ownership (base-class and aliasing pointers included). Its call operator is the death hook:
// it runs when the last strong reference goes, before the object's destructor.
//
// All its state is one word: the head of the node list, with bit 0 as a spin lock, bit 1 set
// once, before the object is shared, when the cycle collector tracks it (gc.hpp), and bit 2
// likewise when the object is destroyed through its destroy_hook. The
// list is [canonical refs][canonical proxies][other nodes, newest first] (CPython's order).
class WEAKREF_PROCESS_WIDE object_header {
 public:
  object_header() noexcept = default;
  // std::shared_ptr moves its deleter into the control block before the object is shared.
  object_header(object_header&&) noexcept {}
  object_header& operator=(object_header&&) = delete;

  template <class T>
  void operator()(T* object) noexcept {
    auto state = state_.load(std::memory_order_acquire);
    if (state & tracked_bit) untrack(*this);
    // Nodes are only linked while a strong reference exists, so an empty list stays empty.
    if ((state & ~fixed_bits) != 0) expire();
    if (state & destroy_hook_bit) [[unlikely]] {
      auto& hook = destroy_hook::after(object);
      hook.destroy(hook, object);
    } else {
      object->~T();
    }
  }

  // The object is destroyed through its destroy_hook (set once, before it is shared).
  void set_destroy_hook() noexcept {  // not shared yet: no read-modify-write needed
    state_.store(state_.load(std::memory_order_relaxed) | destroy_hook_bit,
                 std::memory_order_relaxed);
  }

  // Whether the cycle collector tracks the object (set once, before it is shared).
  bool tracked() const noexcept {
    return (state_.load(std::memory_order_relaxed) & tracked_bit) != 0;
  }
  void set_tracked() noexcept {  // not shared yet: no read-modify-write needed
    state_.store(state_.load(std::memory_order_relaxed) | tracked_bit, std::memory_order_relaxed);
  }

  // Returns a new handle to the canonical node of `kind`, creating it if needed.
  template <class MakeNode>
  weakref_node* canonical(node_kind kind, MakeNode make) {
    if (auto* node = find_canonical(kind)) return node;
    weakref_node* created = make();
    weakref_node* head = lock();
    for (auto* n = head; n && n->kind_ != node_kind::other; n = n->next_) {
      if (n->kind_ == kind && n->try_retain()) {  // another thread created it meanwhile
        unlock(head);
        delete created;
        return n;
      }
    }
    unlock(insert(head, created));
    return created;
  }

  // Links a new non-canonical node; the caller owns its first handle.
  void link(weakref_node* node) noexcept { unlock(insert(lock(), node)); }

  void unlink(weakref_node* node) noexcept { unlock(remove(lock(), node)); }

  // Unlinks `node` if it is linked and its caller holds its only handle: then nobody else can
  // reach it and it never fires, so the caller may delete it. Returns whether it did.
  // The load acquires: the other handles' last uses of the node (their release() is acq_rel)
  // must happen before the caller deletes it, as release() itself ensures for the last handle.
  bool unlink_if_sole(weakref_node* node) noexcept {
    weakref_node* head = lock();
    bool sole = node->linked_.load(std::memory_order_relaxed) &&
                node->handles_.load(std::memory_order_acquire) == 1;
    unlock(sole ? remove(head, node) : head);
    return sole;
  }

  // Number of live weak reference objects (CPython: getweakrefcount).
  std::size_t count() noexcept {
    std::size_t n = 0;
    weakref_node* head = lock();
    for (auto* node = head; node; node = node->next_) {
      n += node->handles_.load(std::memory_order_relaxed) != 0;
    }
    unlock(head);
    return n;
  }

  // New handles to every live node, in list order (CPython: getweakrefs). Owning handles, so
  // that a caller that throws before wrapping them all gives them back.
  inline std::vector<node_handle> nodes();

 private:
  friend class gc_collector;
  static constexpr std::uintptr_t locked_bit = 1;
  static constexpr std::uintptr_t tracked_bit = 2;
  static constexpr std::uintptr_t destroy_hook_bit = 4;
  // Set before the object is shared, never changed after.
  static constexpr std::uintptr_t fixed_bits = tracked_bit | destroy_hook_bit;
  static constexpr std::uintptr_t flag_bits = locked_bit | fixed_bits;

  // Defined by the collector (gc_registry.hpp): takes a dying tracked object off its list.
  static inline void untrack(object_header& header) noexcept;

  weakref_node* find_canonical(node_kind kind) noexcept {
    weakref_node* head = lock();
    weakref_node* found = nullptr;
    for (auto* n = head; n && n->kind_ != node_kind::other; n = n->next_) {
      if (n->kind_ == kind && n->try_retain()) {
        found = n;
        break;
      }
    }
    unlock(head);
    return found;
  }

  // Spin lock on bit 0 of the head word. Critical sections are a few pointer writes (or one
  // pass over the list at death), so spinning, then yielding, beats a kernel mutex here.
  weakref_node* lock() noexcept {
    auto state = state_.load(std::memory_order_relaxed);
    for (unsigned spins = 0;; ++spins) {
      if ((state & locked_bit) == 0 &&
          state_.compare_exchange_weak(state, state | locked_bit, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        // NOLINTNEXTLINE(performance-no-int-to-ptr): the word is a tagged pointer
        return reinterpret_cast<weakref_node*>(state & ~flag_bits);
      }
      if (spins >= 64) std::this_thread::yield();
      state = state_.load(std::memory_order_relaxed);
    }
  }

  // Keeps the fixed bits, which only change before the object is shared.
  void unlock(weakref_node* head) noexcept {
    auto fixed = state_.load(std::memory_order_relaxed) & fixed_bits;
    state_.store(reinterpret_cast<std::uintptr_t>(head) | fixed, std::memory_order_release);
  }

  // Takes `node` out of the list if it is in; returns the new head. Called under the lock.
  static weakref_node* remove(weakref_node* head, weakref_node* node) noexcept {
    if (!node->linked_.load(std::memory_order_relaxed)) return head;
    if (node->prev_) node->prev_->next_ = node->next_;
    if (node->next_) node->next_->prev_ = node->prev_;
    if (head == node) head = node->next_;
    node->linked_.store(false, std::memory_order_release);
    return head;
  }

  // Inserts `node` where its kind belongs; returns the new head. Called under the lock.
  static weakref_node* insert(weakref_node* head, weakref_node* node) noexcept {
    weakref_node* prev = nullptr;
    weakref_node* next = head;
    auto before = [node](const weakref_node* n) {
      return node->kind_ == node_kind::canonical_ref ||
             (node->kind_ == node_kind::canonical_proxy && n->kind_ != node_kind::canonical_ref) ||
             n->kind_ == node_kind::other;
    };
    while (next && !before(next)) {
      prev = next;
      next = next->next_;
    }
    node->prev_ = prev;
    node->next_ = next;
    node->linked_.store(true, std::memory_order_relaxed);
    if (next) next->prev_ = node;
    if (!prev) return node;
    prev->next_ = node;
    return head;
  }

  // The object is dying: unlink every node at once, so every weak reference answers nullptr
  // before any callback runs; then call back the nodes that still have a handle, in list order
  // (newest first), outside the lock so callbacks may do anything, including dropping other
  // objects (whose callbacks then run nested). The +1 taken here keeps a node whose other
  // handles are dropped by an earlier callback alive and called (CPython's snapshot).
  void expire() noexcept { fire_chain(detach_all()); }

  // Unlinks every node; returns the chain of those to call back, each with an extra handle.
  weakref_node* detach_all() noexcept {
    if ((state_.load(std::memory_order_acquire) & ~flag_bits) == 0) return nullptr;
    weakref_node* head = lock();
    weakref_node* calls = nullptr;
    weakref_node** tail = &calls;
    for (auto* node = head; node;) {
      auto* next = node->next_;
      node->prev_ = node->next_ = nullptr;
      // A load, then a store: every writer of the flag holds this lock, or only clears it.
      if (node->callback_pending_.load(std::memory_order_acquire)) {
        node->callback_pending_.store(false, std::memory_order_relaxed);
        if (node->try_retain()) {
          *tail = node;
          tail = &node->next_;
        }
      }
      // Last: a release() on another thread that sees it may delete the node at once.
      node->linked_.store(false, std::memory_order_release);
      node = next;
    }
    unlock(nullptr);
    return calls;
  }

  // Calls back a chain from detach_all() in order, releasing each extra handle.
  static void fire_chain(weakref_node* calls) noexcept {
    while (calls) {
      auto* node = calls;
      calls = node->next_;
      node->next_ = nullptr;
      bool keeps_handle = node->fire_keeps_handle_;
      try {
        node->fire();
      } catch (...) {
        report_unraisable(std::current_exception(), node->where());
      }
      if (!keeps_handle) node->release();
    }
  }

  std::atomic<std::uintptr_t> state_{0};
};

// Inlined into every lookup; the tracked case (a collection may be deciding) is out of line.
[[gnu::always_inline]] inline std::shared_ptr<const void> weakref_node::lock() const noexcept {
  if (header_->tracked()) [[unlikely]]
    return lock_tracked();
  return owner_.lock();
}

inline bool weakref_node::alive() const noexcept {
  return !owner_.expired() && (!header_->tracked() || gc_admits(*header_, false));
}

inline void weakref_node::release() noexcept {
  if (handles_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // A node its object's death (or a collection) already unlinked needs no lock: the common
  // case for a callback ref dropped after its object died.
  if (linked_.load(std::memory_order_acquire)) header_->unlink(this);
  delete this;  // may drop the last weak count, freeing the header: after unlink returns
}

// node_handle: an owning pointer to a node (one handle). Copying takes another handle.
class node_handle {
 public:
  node_handle() noexcept = default;
  explicit node_handle(weakref_node* adopted) noexcept : node_(adopted) {}
  node_handle(const node_handle& other) noexcept : node_(other.node_) {
    if (node_) node_->retain();
  }
  node_handle(node_handle&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
  node_handle& operator=(node_handle other) noexcept {
    std::swap(node_, other.node_);
    return *this;
  }
  ~node_handle() {
    if (node_) node_->release();
  }

  // A new handle to `node`, which the caller keeps alive meanwhile.
  static node_handle share(weakref_node& node) noexcept {
    node.retain();
    return node_handle(&node);
  }

  weakref_node* get() const noexcept { return node_; }
  weakref_node* operator->() const noexcept { return node_; }
  explicit operator bool() const noexcept { return node_ != nullptr; }
  void reset() noexcept { node_handle().swap(*this); }
  void swap(node_handle& other) noexcept { std::swap(node_, other.node_); }

 private:
  weakref_node* node_ = nullptr;
};

inline std::vector<node_handle> object_header::nodes() {
  std::vector<node_handle> result;
  for (;;) {
    result.reserve(count());
    weakref_node* head = lock();
    std::size_t live = 0;
    for (auto* node = head; node; node = node->next_) {
      live += node->handles_.load(std::memory_order_relaxed) != 0;
    }
    if (live <= result.capacity()) {  // never allocate under the lock
      for (auto* node = head; node; node = node->next_) {
        if (node->try_retain()) result.emplace_back(node);
      }
      unlock(head);
      return result;
    }
    unlock(head);  // nodes were linked meanwhile: make room and look again
  }
}

}  // namespace weakref::detail

#include "weakref/detail/gc_registry.hpp"  // IWYU pragma: export
