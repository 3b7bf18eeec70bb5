// weakref/detail/weak_table.hpp — the insertion-ordered hash table behind weak_value_map,
// weak_key_map, weak_set and weakref::cache: which entries it holds and in what order, when a
// death or a removal takes an entry out, and when user code (the fields' destructors) may run.
// Its parts: the entries and their deaths (table_node.hpp), the index (table_index.hpp) and the
// registered iterators (table_cursor.hpp); the iterator itself is in table_iterator.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "weakref/detail/object_header.hpp"
#include "weakref/detail/table_cursor.hpp"
#include "weakref/detail/table_index.hpp"
#include "weakref/detail/table_node.hpp"

namespace weakref::detail {

// weak_table<Fields>: the entries (nodes) in insertion order, a vector with null holes, plus
// an index of node pointers (table_index). The table owns one handle of each node it holds.
//
// Deaths are posted to the inbox by whichever thread they happen on, and applied by the next
// *changing* operation (settle): the entry leaves the index, and leaves the order (its fields
// destroyed) only when no iterator exists (CPython's pending-removal rule), so iterators —
// which hold a position — never skip or repeat an entry, and the loop body's references to
// fields stay valid. Reading operations (const) change nothing: they skip dead entries, and
// size() subtracts the posted deaths. So const members may run on several threads at once, as
// a std container's may; only iterator registration takes a (spin) lock.
//
// The one rule for user code: it runs while the table is consistent, and code that may
// destroy the container runs after the operation's last use of the table. By kind:
// - Destructors (a removed entry's fields, an element let go) and erase_if's predicate may do
//   anything. Changing operations collect what they take out in a graveyard declared in the
//   operation's frame and destroyed when it returns; an iterator re-checks that its table still
//   exists after letting go of an element.
// - Moves out of a popped entry (pop, popitem) come after its erase, from the fields the
//   graveyard keeps: they may do anything too. (While an iterator exists the entry stays in the
//   order, pending: destroying the container then destroys the fields under the move.) Fields
//   whose moves may throw are moved before the erase instead (strong guarantee), and such a
//   move must neither change nor destroy the container.
// - A new entry's constructors (make(), before link() reads the table) and the value
//   weak_key_map::insert_or_assign makes for a present key may change the container, not destroy
//   it (the operation still files and returns the entry): the operation compares version()
//   around them and looks again if it changed.
// - Hash runs before the operation first reads the table: it may change the container too.
// - KeyEqual (called while the index is probed), the moves into a replacement node (renode) and
//   weak_key_map's in-place assignment of a value must neither change nor destroy the container:
//   undefined, as re-entering a std container from its functors or element operations is.
// - Const members run no other user code than Hash, KeyEqual (as above) and the copies they
//   hand out, made under an iterator, which stops if the container goes.
template <class Fields>
class weak_table {
 public:
  using node = table_node<Fields>;
  using element_type = typename Fields::element_type;

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
    cursors_.detach_all();  // the iterators left
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
    cursors_.swap(other.cursors_);
    std::swap(deferred_, other.deferred_);
    // Both past both: an operation that read either version sees that the contents changed.
    version_ = other.version_ = std::max(version_, other.version_) + 1;
    cursors_.retarget(this);
    other.cursors_.retarget(&other);
  }

  // Nodes taken out of the table, in the order taken; destroying the graveyard destroys their
  // fields and lets the nodes go. Declare it first in a changing operation: it is destroyed
  // after the operation's last use of the table. (weakref::cache declares it before taking its
  // shard's lock, so no user destructor runs under the lock.) While it keeps a node that
  // may still post, it holds a reference to the inbox, which that node's retire() may use after
  // the table is gone.
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
    void keep(node* n, typename node::inbox_type* inbox) noexcept {
      if (!n->unlinked_) {  // only such a node's retire() may use the inbox
        if (!inbox_) {
          inbox->retain();
          inbox_ = inbox;
        } else if (inbox != inbox_) {
          // User code between two uses of this graveyard replaced the table's contents (and
          // its inbox) by another table's: the node keeps its own inbox alive.
          n->hold_inbox();
        }
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
        // NOLINTNEXTLINE(performance-no-int-to-ptr): keep() chains the graveyard through it
        first_ = reinterpret_cast<node*>(n->position);
        if (!first_) last_ = nullptr;
        drop(n);  // user code: may take more nodes out of this table into another graveyard
      }
      if (inbox_) std::exchange(inbox_, nullptr)->release();
    }
    node* first_ = nullptr;
    node* last_ = nullptr;
    typename node::inbox_type* inbox_ = nullptr;

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
    for (auto* n = inbox_->peek(); n; n = n->next_dead()) posted += holds(n);
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
    return index_.find(hash, [&](const node& n) { return same(n.fields()); });
  }

  // Changes whenever an entry comes or goes, or the contents are swapped: an operation that
  // runs user code between finding an entry (or its absence) and using what it found compares
  // it before and after, and looks again if it changed.
  std::uint64_t version() const noexcept { return version_; }

  // Appends an entry on `obj`; returns its node. Strong guarantee: if anything throws, the
  // table is unchanged (a node made but not linked goes to `g`).
  template <class... A>
  node* append(graveyard& g, object_header& header, const std::shared_ptr<element_type>& obj,
               std::uint64_t hash, A&&... fields) {
    auto* n = make(header, obj, hash, std::forward<A>(fields)...);
    try {
      link(n, header);
    } catch (...) {
      discard(n, g);
      throw;
    }
    return n;
  }
  // append() in two steps, for a caller that may have to look again between them. make()
  // constructs the fields (user code, which may change the table: so nothing of the table is
  // read before it, and the node gets its position when linked); link() files the node as the
  // newest entry, strong guarantee (if it throws, the caller still owns the node).
  template <class... A>
  node* make(object_header& header, const std::shared_ptr<element_type>& obj, std::uint64_t hash,
             A&&... fields) {
    return new node(header, obj, inbox(), hash, 0, std::in_place, std::forward<A>(fields)...);
  }
  void link(node* n, object_header& header) {
    n->rebind_inbox(inbox());
    if (!index_.has_room(live_ + 1)) index_.grow(live_ + 1);
    reserve_one(order_);
    n->position = order_.size();
    header.link(n);
    order_.push_back(n);
    index_.insert(n);
    ++live_;
    ++version_;
  }
  // Lets go of a node from make() that will not be linked: its fields' destructors are user
  // code, so it goes to the graveyard.
  static void discard(node* n, graveyard& g) noexcept {
    n->unlinked_ = true;  // never linked: retire() deletes it outright
    g.keep(n, nullptr);
  }

  // Replaces entry `old` by one on `obj` with the same fields, in the same place (a new
  // object for the same key). A late death of the old object is then stale.
  node* renode(node* old, object_header& header, const std::shared_ptr<element_type>& obj,
               graveyard& g) {
    if (!cursors_.empty()) reserve_one(retired_);
    auto* n = replacement(*old, header, obj);
    header.link(n);
    index_.replace(old, n);
    order_[old->position] = n;
    if (cursors_.empty()) {
      g.keep(old, inbox_);
    } else {
      retired_.push_back(old);  // the loop body may hold references to its fields
    }
    ++version_;
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
    if (!cursors_.empty()) {  // kept for the iterators (see remove)
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
    index_.clear();
    live_ = 0;
    ++version_;
  }

  // The iterators that hold a position (table_iterator registers itself).
  cursor_list<Fields>& cursors() noexcept { return cursors_; }

 private:
  // Whether posted node `n` is still the entry at its position (a stale death is not: its
  // entry was replaced, CPython bpo-28427, or already taken out).
  bool holds(const node* n) const noexcept {
    return n->position < order_.size() && order_[n->position] == n && !n->removed;
  }

  // Loops: the inbox may fill again meanwhile (no user code runs here, but other threads post).
  [[gnu::noinline]] void collect_posted(graveyard& g) noexcept {
    auto* dead = inbox_->take();
    do {
      while (dead) {
        auto* next = dead->next_dead();
        if (holds(dead)) {
          dead->take_post();
          remove(static_cast<node*>(dead), g);
        } else {
          dead->release();  // the inbox's handle of a stale post: the table no longer holds it
        }
        dead = next;
      }
    } while ((dead = inbox_->take()));
    maybe_compact();
  }

  // The entries removed and replaced while iterators were alive, once none is.
  [[gnu::noinline]] void release_deferred(graveyard& g) noexcept {
    if (!cursors_.empty()) return;
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

  // Created with the first entry, so empty and moved-from tables allocate nothing.
  typename node::inbox_type& inbox() {
    if (!inbox_) inbox_ = new typename node::inbox_type;
    return *inbox_;
  }

  // The node for renode(), its fields moved from `old` in one step, or copied where they can be
  // and a move could lose them: an iterator's loop body may hold references to them, or the
  // move may throw midway (a copy that throws leaves the entry's key whole).
  node* replacement(node& old, object_header& header, const std::shared_ptr<element_type>& obj) {
    if constexpr (std::is_copy_constructible_v<Fields>) {
      if (!std::is_nothrow_move_constructible_v<Fields> || !cursors_.empty()) {
        return new node(header, obj, inbox(), old.hash, old.position, std::as_const(old.fields()));
      }
    }
    return new node(header, obj, inbox(), old.hash, old.position, std::move(old.fields()));
  }

  // Removes entry `n`: out of the index at once; out of the order, into `g`, when no iterator
  // is alive, else marked removed and kept with its fields (the loop body may hold references
  // to them) until the next changing operation after the last iterator is gone.
  void remove(node* n, graveyard& g) noexcept {
    index_.erase(n);
    --live_;
    ++version_;
    if (cursors_.empty()) {
      order_[n->position] = nullptr;
      g.keep(n, inbox_);
    } else {
      n->removed = true;
      ++deferred_;
      // As CPython's del d[k]. A node its death posted is unlinked already (take_post).
      if (!n->unlinked_ && n->header().unlink_if_sole(n)) n->unlinked_ = true;
    }
  }

  // Lets go of a node the table no longer holds: user code (its fields' destructors).
  static void drop(node* n) noexcept {
    if (!n) return;
    n->destroy_fields();
    n->retire();
  }

  // Drops the holes once they outnumber live entries, unless an iterator holds a position.
  // In place: no allocation, and the index (of pointers) is untouched. The entries before the
  // first hole stay where they are, untouched: when the newest entries are the ones that went
  // (short-lived objects), no node is written at all, where rewriting every live node's
  // position cost a cache miss per node in a large table.
  void maybe_compact() noexcept {
    if (!cursors_.empty() || order_.size() - live_ <= std::max<std::size_t>(live_, 8)) return;
    auto kept =
        static_cast<std::size_t>(std::find(order_.begin(), order_.end(), nullptr) - order_.begin());
    for (auto i = kept; i < order_.size(); ++i) {
      if (auto* n = order_[i]) {
        n->position = kept;
        order_[kept++] = n;
      }
    }
    order_.resize(kept);
  }

  static void release_all(node* n) noexcept {
    while (n) {
      auto* next = n->next_dead();
      n->release();
      n = next;
    }
  }

  typename node::inbox_type* inbox_ = nullptr;  // holds one reference
  std::vector<node*> order_;                    // insertion order; null where an entry was removed
  table_index<node> index_;
  std::vector<node*> retired_;  // replaced by renode() while an iterator was alive
  std::size_t live_ = 0;
  cursor_list<Fields> cursors_;  // the registered iterators
  std::size_t deferred_ = 0;     // removed entries kept in order_ for iterators
  life_guard* guards_ = nullptr;
  std::uint64_t version_ = 0;
};

}  // namespace weakref::detail
