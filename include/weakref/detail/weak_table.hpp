// weakref/detail/weak_table.hpp — the insertion-ordered hash table behind weak_value_map,
// weak_key_map and weak_set, and the inbox through which deaths on any thread reach it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "weakref/detail/object_header.hpp"

namespace weakref::detail {

class entry_node;

// Where death callbacks leave the nodes of entries whose object died. Callbacks run on any
// thread, so this is a lock-free stack: pushing is one CAS, and the container takes the whole
// stack at once before each operation. Closing (when the container goes) refuses later pushes.
// Reference-counted: by its table, and by each node whose post may still come after the table
// is gone (see entry_node::retire).
class death_inbox {
 public:
  bool push(entry_node* node) noexcept;
  // A plain load: most operations find the inbox empty, and skip the exchange.
  bool empty() const noexcept { return head_.load(std::memory_order_relaxed) == nullptr; }
  entry_node* take() noexcept {
    return empty() ? nullptr : head_.exchange(nullptr, std::memory_order_acquire);
  }
  entry_node* close() noexcept { return head_.exchange(closed(), std::memory_order_acquire); }
  // The posted nodes, newest first, without taking them: for readers, while nobody takes.
  const entry_node* peek() const noexcept { return head_.load(std::memory_order_acquire); }

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  // Not the address of a static: each shared library built with hidden visibility would have
  // its own, and a container closed by one library's code must refuse the posts of another's.
  // No node is at an odd address.
  static entry_node* closed() noexcept { return reinterpret_cast<entry_node*>(std::uintptr_t{1}); }
  std::atomic<entry_node*> head_{nullptr};
  std::atomic<std::size_t> refs_{1};
};

// The weak reference a container entry holds on its object (CPython: KeyedRef, or the
// WeakKeyDictionary/WeakSet internal ref). Its callback only posts it to the inbox: the
// container removes the entry itself, on its own thread, so no container lock exists and no
// death ever waits for a container. Every field but the inbox belongs to the container.
class entry_node : public weakref_node {
 public:
  entry_node(object_header& header, std::weak_ptr<const void> owner, death_inbox& inbox,
             std::uint64_t entry_hash, std::size_t entry_position) noexcept
      : weakref_node(header, std::move(owner), node_kind::other, true),
        hash(entry_hash),
        position(entry_position),
        inbox_(&inbox) {}
  ~entry_node() override {
    if (owns_inbox_ref_) inbox_->release();
  }

  // The container lets go of its handle, for good. Usually it held the only one: the node is
  // unlinked and deleted at once, and never posts. Otherwise (valuerefs()/keyrefs() share it,
  // or its object's death has taken it) it may still post, maybe after the container is gone,
  // so it keeps the inbox alive until it goes. So only such nodes count references to the inbox.
  void retire() noexcept {
    if (unlinked_ || header().unlink_if_sole(this)) {
      delete this;
      return;
    }
    inbox_->retain();
    owns_inbox_ref_ = true;
    release();
  }

  // The flags come first: the Itanium C++ ABI places them in weakref_node's tail padding, which
  // keeps common entries within 112 bytes (glibc's fast bins take up to 120).
  bool removed = false;  // removed while an iterator was alive; freed when the last one goes
  // Unlinked from its object when removed (its only handle the container's): it no longer
  // counts in getweakrefcount, and never posts.
  bool unlinked_ = false;

 private:
  bool owns_inbox_ref_ = false;

 public:
  std::uint64_t hash;    // the key's mixed hash
  std::size_t position;  // the entry's place in insertion order
  entry_node* next_dead = nullptr;

 private:
  void fire() override {
    retain();  // the inbox's handle; the container releases it
    if (!inbox_->push(this)) release();
  }
  std::string_view where() const noexcept override { return "weak container"; }

  death_inbox* inbox_;
};

inline bool death_inbox::push(entry_node* node) noexcept {
  auto* head = head_.load(std::memory_order_relaxed);
  do {
    if (head == closed()) return false;
    node->next_dead = head;
  } while (!head_.compare_exchange_weak(head, node, std::memory_order_release,
                                        std::memory_order_relaxed));
  return true;
}

// An entry: its node with the container's fields (key or value) inside, so a lookup touches
// one allocation and keys and values never move. `fields` is engaged exactly while the entry
// is in its table; the table destroys it on removal (not when the last handle goes:
// valuerefs()/keyrefs() handles may outlive the entry by far). Aligned so that the table's
// index can keep a few hash bits in the low bits of the pointer.
//
// Fields names the element type (`element_type`); a new entry's fields are constructed from
// (std::in_place, arguments...), so that Fields' copy and move constructors stay its own.
template <class Fields>
class alignas(16) table_node final : public entry_node {
 public:
  using element_type = typename Fields::element_type;

  template <class... A>
  table_node(object_header& header, const std::shared_ptr<element_type>& element,
             death_inbox& inbox, std::uint64_t hash, std::size_t position, A&&... fields)
      : entry_node(header, std::weak_ptr<const void>(element), inbox, hash, position),
        fields_(std::in_place, std::forward<A>(fields)...) {}

  // A strong reference to the element, or null if its object died. The node's weak_ptr was
  // made from a shared_ptr<element_type>, so its pointer converts back exactly: no copy of
  // the element pointer needs to be stored.
  std::shared_ptr<element_type> lock_element() const noexcept {
    auto owner = lock();
    auto* element = static_cast<element_type*>(const_cast<void*>(owner.get()));
    return std::shared_ptr<element_type>(std::move(owner), element);
  }

  Fields& fields() noexcept { return *fields_; }
  const Fields& fields() const noexcept { return *fields_; }
  void destroy_fields() noexcept { fields_.reset(); }

 private:
  std::optional<Fields> fields_;
};

// Mixes a hash so that linear probing spreads it (pointers and small integers included).
// Multiplying by an odd constant is a bijection, so for identity keys equal mixed hashes
// mean equal pointers.
inline std::uint64_t mix_hash(std::uint64_t h) noexcept {
  h ^= h >> 32;
  return h * 0x9E3779B97F4A7C15ull;
}

template <class Fields>
class weak_table;

// The part of an iterator that its table knows. A table keeps the iterators that hold a
// position in an intrusive list, so that it can keep compaction away from them, carry them
// along when its contents move (swap and move: iterators follow their entries, as std's do),
// and detach them when it is destroyed (an iterator may outlive its container, as std's may;
// it must not be used then, but destroying it is fine).
template <class Fields>
class table_cursor {
 protected:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  table_cursor() noexcept = default;
  table_cursor(weak_table<Fields>* table, std::size_t i) noexcept : table_(table), i_(i) {}
  table_cursor(const table_cursor&) = delete;
  table_cursor& operator=(const table_cursor&) = delete;
  ~table_cursor() = default;

  bool registered() const noexcept { return table_ && i_ != npos; }

  weak_table<Fields>* table_ = nullptr;
  std::size_t i_ = npos;

 private:
  friend class weak_table<Fields>;
  table_cursor* prev_ = nullptr;
  table_cursor* next_ = nullptr;
};

// weak_table<Fields>: the entries (nodes) in insertion order, a vector with null holes, plus
// an open-addressing index of node pointers (linear probing, backward-shift deletion). The
// table owns one handle of each node it holds.
//
// Deaths are posted to the inbox by whichever thread they happen on, and applied by the next
// *changing* operation (settle): the entry leaves the index, and leaves the order (its fields
// destroyed) only when no iterator exists (CPython's pending-removal rule), so iterators —
// which hold a position — never skip or repeat an entry, and the loop body's references to
// fields stay valid. Reading operations (const) change nothing: they skip dead entries, and
// size() subtracts the posted deaths. So const members may run on several threads at once, as
// a std container's may; only iterator registration takes a (spin) lock.
//
// The one rule for user code (field destructors, releasing an element): it runs after the
// table is consistent and after the operation's last use of the table, because it may destroy
// or reshape the container. Changing operations collect what they take out in a graveyard
// declared in the operation's frame and destroyed when it returns; an iterator re-checks that
// its table still exists after letting go of an element.
template <class Fields>
class weak_table {
 public:
  using node = table_node<Fields>;
  using element_type = typename Fields::element_type;
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  weak_table() noexcept = default;
  weak_table(const weak_table&) = delete;
  weak_table& operator=(const weak_table&) = delete;
  weak_table(weak_table&& other) noexcept { swap(other); }
  weak_table& operator=(weak_table&& other) noexcept {
    weak_table(std::move(other)).swap(*this);
    return *this;
  }
  ~weak_table() {
    for (auto* g = guards_; g; g = g->outer_) g->destroyed = true;
    for (auto* c = std::exchange(cursors_, nullptr); c;) {  // detach the iterators left
      auto* next = std::exchange(c->next_, nullptr);
      c->prev_ = nullptr;
      c->table_ = nullptr;
      c->i_ = npos;
      c = next;
    }
    if (!inbox_) return;
    release_all(inbox_->close());
    for (auto* n : order_) drop(n);
    for (auto* n : retired_) drop(n);
    inbox_->release();
  }

  void swap(weak_table& other) noexcept {
    std::swap(inbox_, other.inbox_);
    order_.swap(other.order_);
    index_.swap(other.index_);
    retired_.swap(other.retired_);
    std::swap(live_, other.live_);
    std::swap(cursors_, other.cursors_);
    std::swap(deferred_, other.deferred_);
    retarget_iterators();
    other.retarget_iterators();
  }

  // Nodes taken out of the table, in the order taken; destroying the graveyard destroys their
  // fields and lets the nodes go. Declare it first in a changing operation: it is destroyed
  // after the operation's last use of the table. (weakref::cache declares it before taking its
  // shard's lock, so no user destructor runs under the lock.) It holds a reference to the
  // inbox, which a node's retire() may use after the table is gone.
  class graveyard {
   public:
    graveyard() noexcept = default;
    graveyard(const graveyard&) = delete;
    graveyard& operator=(const graveyard&) = delete;
    ~graveyard() {
      if (first_) [[unlikely]]
        bury();
    }

   private:
    friend class weak_table;
    // Out of the order, a node's position is free: it chains the graveyard. (A late post of
    // such a node reads it as an out-of-range position, and is ignored.)
    void keep(node* n, death_inbox* inbox) noexcept {
      if (!first_) {
        inbox->retain();
        inbox_ = inbox;
      }
      n->position = 0;
      if (last_) {
        last_->position = reinterpret_cast<std::uintptr_t>(n);
      } else {
        first_ = n;
      }
      last_ = n;
    }
    [[gnu::noinline]] void bury() noexcept {
      while (auto* n = std::exchange(first_, nullptr)) {
        first_ = reinterpret_cast<node*>(n->position);
        if (!first_) last_ = nullptr;
        drop(n);  // user code: may take more nodes out of this table into another graveyard
      }
      std::exchange(inbox_, nullptr)->release();
    }
    node* first_ = nullptr;
    node* last_ = nullptr;
    death_inbox* inbox_ = nullptr;

   public:
    bool empty() const noexcept { return first_ == nullptr; }
  };

  // Tells a loop that runs user code between uses of the table whether the table was
  // destroyed meanwhile (see table_container::tidy). Guards nest, innermost first.
  class life_guard {
   public:
    explicit life_guard(weak_table& t) noexcept
        : table_(&t), outer_(std::exchange(t.guards_, this)) {}
    life_guard(const life_guard&) = delete;
    life_guard& operator=(const life_guard&) = delete;
    ~life_guard() {
      if (!destroyed) table_->guards_ = outer_;
    }
    bool destroyed = false;

   private:
    friend class weak_table;
    weak_table* table_;
    life_guard* outer_;
  };

  // Applies the deaths posted since the last call, and once no iterator is left, lets go of the
  // entries removed while there were some: two loads, inlined, when there is nothing to do.
  void settle(graveyard& g) noexcept {
    if (inbox_ && !inbox_->empty()) collect_posted(g);
    if (deferred_ != 0 || !retired_.empty()) [[unlikely]]
      release_deferred(g);
  }

  // Reading: the number of live entries (less the deaths posted but not applied yet).
  std::size_t size() const noexcept {
    if (!inbox_ || inbox_->empty()) return live_;
    std::size_t posted = 0;
    for (auto* n = inbox_->peek(); n; n = n->next_dead) posted += holds(n);
    return live_ - posted;
  }
  std::size_t end_index() const noexcept { return order_.size(); }
  // The entry at position i, or null (also if removed while an iterator was alive: CPython's
  // dict still has those, as pending removals, and so does the order; see at_or_removed).
  node* at(std::size_t i) const noexcept {
    auto* n = order_[i];
    return n && !n->removed ? n : nullptr;
  }
  node* at_or_removed(std::size_t i) const noexcept { return order_[i]; }

  // The entry with `hash` for which `same(fields)` holds, or null. Reading: it may be dead
  // (posted and not yet applied); a reader checks its element.
  template <class Same>
  node* find(std::uint64_t hash, Same same) const {
    if (index_.empty()) return nullptr;
    auto mask = index_.size() - 1;
    for (auto s = home(hash); index_[s] != 0; s = (s + 1) & mask) {
      if ((index_[s] & tag_mask) != tag_of(hash)) continue;
      auto* n = node_in(index_[s]);
      if (n->hash == hash && same(n->fields())) return n;
    }
    return nullptr;
  }

  // Appends an entry on `obj`; returns its node. Strong guarantee: if anything throws, the
  // table is unchanged.
  template <class... A>
  node* append(object_header& header, const std::shared_ptr<element_type>& obj, std::uint64_t hash,
               A&&... fields) {
    reserve_index(live_ + 1);
    reserve_one(order_);
    auto* n = new node(header, obj, inbox(), hash, order_.size(), std::in_place,
                       std::forward<A>(fields)...);
    header.link(n);
    order_.push_back(n);
    insert_index(n);
    ++live_;
    return n;
  }

  // Replaces entry `old` by one on `obj` with the same fields, in the same place (a new
  // object for the same key). A late death of the old object is then stale.
  node* renode(node* old, object_header& header, const std::shared_ptr<element_type>& obj,
               graveyard& g) {
    if (cursors_) reserve_one(retired_);
    auto* n = new node(header, obj, inbox(), old->hash, old->position, moved_fields(*old));
    header.link(n);
    index_[slot_of(old)] = slot_for(n);
    order_[old->position] = n;
    if (!cursors_) {
      g.keep(old, inbox_);
    } else {
      retired_.push_back(old);  // the loop body may hold references to its fields
    }
    return n;
  }

  void erase(node* n, graveyard& g) noexcept {
    remove(n, g);
    maybe_compact();
  }
  // For erase(iterator): the entry may already be gone (a stale iterator).
  void erase(std::size_t i, graveyard& g) noexcept {
    if (i >= order_.size()) return;
    if (auto* n = at(i)) erase(n, g);
  }

  // The newest entry, or null. Call after settle(): it may be dead only if it died since.
  node* last() const noexcept {
    for (auto i = order_.size(); i-- > 0;) {
      if (auto* n = at(i)) return n;
    }
    return nullptr;
  }

  void clear(graveyard& g) noexcept {
    if (cursors_) {  // kept for the iterators (see remove)
      for (auto* n : order_) {
        if (n && !n->removed) remove(n, g);
      }
      return;
    }
    for (auto* n : order_) {
      if (n) g.keep(n, inbox_);
    }
    for (auto* n : retired_) g.keep(n, inbox_);
    order_.clear();
    retired_.clear();
    deferred_ = 0;
    std::fill(index_.begin(), index_.end(), 0);
    live_ = 0;
  }

  // Iterators register while they hold a position, so the order is not compacted under them.
  // Reading operations make iterators, so registering takes a lock (several threads may
  // iterate one const container); it only links and unlinks.
  using cursor = table_cursor<Fields>;
  // GCC 12 takes a registered temporary for a dangling pointer, not seeing that moving it
  // (move_iterator) or destroying it (remove_iterator) takes it out of the list.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
  void add_iterator(cursor& c) noexcept {
    cursor_lock lock(cursors_locked_);
    c.prev_ = nullptr;
    c.next_ = cursors_;
    if (cursors_) cursors_->prev_ = &c;
    cursors_ = &c;
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
  // `to` takes `from`'s place (an iterator was moved).
  void move_iterator(cursor& from, cursor& to) noexcept {
    cursor_lock lock(cursors_locked_);
    to.prev_ = std::exchange(from.prev_, nullptr);
    to.next_ = std::exchange(from.next_, nullptr);
    (to.prev_ ? to.prev_->next_ : cursors_) = &to;
    if (to.next_) to.next_->prev_ = &to;
  }
  // The entries removed under iterators stay until the next changing operation after the last
  // iterator is gone (an iterator may be destroyed in a reading context).
  void remove_iterator(cursor& c) noexcept {
    cursor_lock lock(cursors_locked_);
    (c.prev_ ? c.prev_->next_ : cursors_) = c.next_;
    if (c.next_) c.next_->prev_ = c.prev_;
    c.prev_ = c.next_ = nullptr;
  }

 private:
  class cursor_lock {
   public:
    explicit cursor_lock(std::atomic<bool>& locked) noexcept : locked_(locked) {
      while (locked_.exchange(true, std::memory_order_acquire)) {
        while (locked_.load(std::memory_order_relaxed)) {
        }
      }
    }
    ~cursor_lock() { locked_.store(false, std::memory_order_release); }
    cursor_lock(const cursor_lock&) = delete;
    cursor_lock& operator=(const cursor_lock&) = delete;

   private:
    std::atomic<bool>& locked_;
  };

  // Whether posted node `n` is still the entry at its position (a stale death is not: its
  // entry was replaced, CPython bpo-28427, or already taken out).
  bool holds(const entry_node* n) const noexcept {
    return n->position < order_.size() && order_[n->position] == n && !n->removed;
  }

  // Loops: the inbox may fill again meanwhile (no user code runs here, but other threads post).
  [[gnu::noinline]] void collect_posted(graveyard& g) noexcept {
    auto* dead = inbox_->take();
    do {
      while (dead) {
        auto* next = dead->next_dead;
        if (holds(dead)) remove(static_cast<node*>(dead), g);
        dead->release();  // the inbox's handle; the table's keeps a node in `g` alive
        dead = next;
      }
    } while ((dead = inbox_->take()));
    maybe_compact();
  }

  // The entries removed and replaced while iterators were alive, once none is.
  [[gnu::noinline]] void release_deferred(graveyard& g) noexcept {
    if (cursors_) return;
    if (deferred_ != 0) {
      deferred_ = 0;
      for (auto& n : order_) {
        if (n && n->removed) g.keep(std::exchange(n, nullptr), inbox_);
      }
    }
    for (auto* n : retired_) g.keep(n, inbox_);
    retired_.clear();
    maybe_compact();
  }

  // An index slot: a node pointer with four bits of its hash in the alignment bits, so most
  // probes that miss never touch the node. 0 = empty.
  static constexpr std::uintptr_t tag_mask = alignof(node) - 1;
  // Bits just below those that pick the home slot: well mixed, and independent of the home.
  // (The lowest bits would not do: for identity keys they are the same for every object.)
  static std::uintptr_t tag_of(std::uint64_t hash) noexcept { return (hash >> 28) & tag_mask; }
  static std::uintptr_t slot_for(const node* n) noexcept {
    return reinterpret_cast<std::uintptr_t>(n) | tag_of(n->hash);
  }
  static node* node_in(std::uintptr_t slot) noexcept {
    return reinterpret_cast<node*>(slot & ~tag_mask);
  }

  // Created with the first entry, so empty and moved-from tables allocate nothing.
  death_inbox& inbox() {
    if (!inbox_) inbox_ = new death_inbox;
    return *inbox_;
  }

  std::size_t home(std::uint64_t hash) const noexcept {
    return static_cast<std::size_t>(hash >> 32) & (index_.size() - 1);
  }

  void insert_index(const node* n) noexcept {
    auto mask = index_.size() - 1;
    auto s = home(n->hash);
    while (index_[s] != 0) s = (s + 1) & mask;
    index_[s] = slot_for(n);
  }

  std::size_t slot_of(const node* n) const noexcept {
    auto mask = index_.size() - 1;
    auto s = home(n->hash);
    while (node_in(index_[s]) != n) s = (s + 1) & mask;
    return s;
  }

  void erase_index(const node* n) noexcept {
    auto mask = index_.size() - 1;
    auto s = slot_of(n);
    // Backward-shift deletion: pull later members of the probe run into the hole.
    for (auto next = (s + 1) & mask; index_[next] != 0; next = (next + 1) & mask) {
      auto want = home(node_in(index_[next])->hash);
      if (((next - want) & mask) >= ((next - s) & mask)) {
        index_[s] = index_[next];
        s = next;
      }
    }
    index_[s] = 0;
  }

  void reserve_index(std::size_t count) {
    if (count * 4 <= index_.size() * 3) return;  // load factor 3/4
    std::size_t size = index_.empty() ? 8 : index_.size() * 2;
    while (count * 4 > size * 3) size *= 2;
    std::vector<std::uintptr_t> fresh(size);
    index_.swap(fresh);
    for (auto* n : order_) {
      if (n && !n->removed) insert_index(n);
    }
  }

  // Room for one more push_back, growing geometrically (reserve(size() + 1) alone would not).
  static void reserve_one(std::vector<node*>& v) {
    if (v.size() == v.capacity()) v.reserve(std::max<std::size_t>(8, v.size() * 2));
  }

  // The fields for a replacement node: moved, unless an iterator's loop body may hold
  // references to them (then copied, if they can be).
  Fields moved_fields(node& old) const {
    if constexpr (std::is_copy_constructible_v<Fields>) {
      if (cursors_) return old.fields();
    }
    return std::move(old.fields());
  }

  // Removes entry `n`: out of the index at once; out of the order, into `g`, when no iterator
  // is alive, else marked removed and kept with its fields (the loop body may hold references
  // to them) until the next changing operation after the last iterator is gone.
  void remove(node* n, graveyard& g) noexcept {
    erase_index(n);
    --live_;
    if (!cursors_) {
      order_[n->position] = nullptr;
      g.keep(n, inbox_);
    } else {
      n->removed = true;
      ++deferred_;
      if (n->header().unlink_if_sole(n)) n->unlinked_ = true;  // as CPython's del d[k]
    }
  }

  // Lets go of a node the table no longer holds: user code (its fields' destructors).
  static void drop(node* n) noexcept {
    if (!n) return;
    n->destroy_fields();
    n->retire();
  }

  // Drops the holes once they outnumber live entries, unless an iterator holds a position.
  // In place: no allocation, and the index (of pointers) is untouched.
  void maybe_compact() noexcept {
    if (cursors_ || order_.size() - live_ <= std::max<std::size_t>(live_, 8)) return;
    std::size_t kept = 0;
    for (auto* n : order_) {
      if (!n) continue;
      n->position = kept;
      order_[kept++] = n;
    }
    order_.resize(kept);
  }

  void retarget_iterators() noexcept {
    for (auto* c = cursors_; c; c = c->next_) c->table_ = this;
  }

  static void release_all(entry_node* n) noexcept {
    while (n) {
      auto* next = n->next_dead;
      n->release();
      n = next;
    }
  }

  death_inbox* inbox_ = nullptr;  // holds one reference
  std::vector<node*> order_;      // insertion order; null where an entry was removed
  std::vector<std::uintptr_t> index_;
  std::vector<node*> retired_;  // replaced by renode() while an iterator was alive
  std::size_t live_ = 0;
  cursor* cursors_ = nullptr;  // the registered iterators
  std::atomic<bool> cursors_locked_{false};
  std::size_t deferred_ = 0;  // removed entries kept in order_ for iterators
  life_guard* guards_ = nullptr;
};

// An iterator over a weak_table that yields only live entries, holding the current value —
// which contains a strong reference — so it cannot die under the loop body (CPython's
// iterators hold their last item too). Traits::value(node, element) makes the value from an
// entry and its locked element. operator* returns a reference into the iterator, so `auto&`,
// `const auto&` and structured bindings all work; the iterator is an input iterator.
//
// The iterator an insertion returns takes its value on first use instead (operator* or ->):
// the caller holds the element then, and an insertion whose iterator is never used takes no
// strong reference (two atomic operations on the object, a third of an insert's cost). If
// every owner has let the element go before that first use, the entry is as good as erased
// and the value's element is null.
template <class Fields, class Traits>
class table_iterator : table_cursor<Fields> {
  using cursor = table_cursor<Fields>;
  using cursor::i_, cursor::npos, cursor::registered, cursor::table_;

 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = typename Traits::value_type;
  using reference = const value_type&;
  using pointer = const value_type*;
  using difference_type = std::ptrdiff_t;
  using node = typename weak_table<Fields>::node;

  table_iterator() noexcept = default;
  // An iterator at the first live entry at or after position `i`; registers with the table.
  table_iterator(weak_table<Fields>* table, std::size_t i) : cursor(table, i) {
    table_->add_iterator(*this);
    settle();
  }
  // The end iterator: holds no position, so it stays the end while the table grows.
  explicit table_iterator(weak_table<Fields>* table) noexcept : cursor(table, npos) {}
  // An iterator at entry `n` if its object is alive, else the end (for find()).
  static table_iterator exactly(weak_table<Fields>* table, node& n) {
    table_iterator it(table);
    if (auto element = n.lock_element()) {
      it.hold(n.position);
      it.current_.emplace(Traits::value(n, std::move(element)));
    }
    return it;
  }
  // An iterator at entry `n`, just inserted; it takes its value on first use (see above).
  static table_iterator inserted(weak_table<Fields>* table, node& n) noexcept {
    table_iterator it(table);
    it.hold(n.position);
    return it;
  }
  table_iterator(const table_iterator& other) noexcept
      : cursor(other.table_, other.i_), current_(other.current_) {
    if (registered()) table_->add_iterator(*this);
  }
  // Takes over `other`'s place and element (no reference count touched); `other` is left
  // at the end.
  table_iterator(table_iterator&& other) noexcept
      : cursor(other.table_, other.i_), current_(std::move(other.current_)) {
    if (registered()) table_->move_iterator(other, *this);
    other.i_ = npos;
    other.current_.reset();
  }
  // Values may hold references (pair<const K&, ...>), so the iterator is re-created, not
  // assigned member by member.
  table_iterator& operator=(const table_iterator& other) noexcept {
    if (this != &other) {
      std::destroy_at(this);
      std::construct_at(this, other);
    }
    return *this;
  }
  table_iterator& operator=(table_iterator&& other) noexcept {
    if (this != &other) {
      std::destroy_at(this);
      std::construct_at(this, std::move(other));
    }
    return *this;
  }
  ~table_iterator() { leave(); }

  reference operator*() const noexcept {
    if (!current_) arrive();
    return *current_;
  }
  pointer operator->() const noexcept { return &**this; }
  // At the end (or once its container is gone) it stays there.
  table_iterator& operator++() {
    if (!registered()) return *this;
    ++i_;
    settle();
    return *this;
  }
  friend bool operator==(const table_iterator& a, const table_iterator& b) noexcept {
    bool a_end = a.at_end(), b_end = b.at_end();
    return a_end || b_end ? a_end == b_end : a.i_ == b.i_;
  }

  // The entry's position, for erase(iterator).
  std::size_t position() const noexcept { return i_; }

 private:
  void hold(std::size_t i) noexcept {
    i_ = i;
    table_->add_iterator(*this);
  }
  void leave() noexcept {
    if (registered()) table_->remove_iterator(*this);
    i_ = npos;
  }
  // The first use of an iterator from an insertion. Its entry stays in the table's order while
  // the iterator is registered, removed or not (and its fields with it).
  void arrive() const noexcept {
    auto& n = *table_->at_or_removed(i_);
    current_.emplace(Traits::value(n, n.removed ? nullptr : n.lock_element()));
  }
  bool at_end() const noexcept { return i_ == npos; }

  // Moves to the first live entry at or after i_, or to the end. Like CPython's loop
  // (`v = wr()` for each entry its dict still has), each entry it passes replaces the element
  // in hand: the next element is taken before the previous one is let go, so the previous
  // one's death cannot take it along; but passing a dead entry lets go of it. Letting go runs
  // user code, which may destroy the container (the iterator is then detached: it stops) or
  // move it elsewhere (the iterator follows): the table is read again after each release.
  // Reads only: deaths are applied by the container's changing operations.
  void settle() {
    while (registered() && i_ < table_->end_index()) {
      auto* n = table_->at_or_removed(i_);
      if (!n) {
        ++i_;
        continue;
      }
      auto element = n->removed ? nullptr : n->lock_element();
      current_.reset();
      if (!registered()) return;  // that release destroyed the container
      if (element) {
        current_.emplace(Traits::value(*n, std::move(element)));
        return;
      }
      ++i_;
    }
    current_.reset();
    leave();  // exhausted: stays the end, and no longer holds a position
  }

  mutable std::optional<value_type> current_;  // empty only at the end, or before first use
};

}  // namespace weakref::detail

namespace weakref::detail {

// Identity-keyed tables (weak_key_map, weak_set) hash the object's header: its address is the
// owner's identity, so a new object at a dead key's address never finds the dead key's entry.
inline std::uint64_t identity_hash(const object_header* header) noexcept {
  return mix_hash(reinterpret_cast<std::uintptr_t>(header));
}

// The identity hash of `p`'s object, or nothing if `p` is empty or not weakrefable.
template <class T>
std::optional<std::uint64_t> identity_hash_of(const std::shared_ptr<T>& p) noexcept {
  if (auto* header = std::get_deleter<object_header>(p)) return identity_hash(header);
  return std::nullopt;
}

// Entries of identity-keyed tables: equal (mixed) hashes mean the same object.
// `inline`: a namespace-scope constexpr variable is otherwise internal to each translation
// unit, and a lambda's type is unique to its TU, so the inline templates using it would differ
// from one TU to the next (an ODR violation).
inline constexpr auto same_object = [](const auto&) { return true; };

// The entry of `p`'s object in an identity-keyed table; null if absent, empty or not
// weakrefable. Reading only: the caller holds `p`, so an entry found is alive.
template <class Fields, class T>
auto* find_object(const weak_table<Fields>& table, const std::shared_ptr<T>& p) noexcept {
  using node = typename weak_table<Fields>::node;
  auto hash = identity_hash_of(p);
  if (!hash) return static_cast<node*>(nullptr);
  return table.find(*hash, same_object);
}

}  // namespace weakref::detail
