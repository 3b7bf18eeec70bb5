// weakref/detail/weak_table.hpp — the insertion-ordered hash table behind weak_value_map,
// weak_key_map and weak_set, and the inbox through which deaths on any thread reach it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "weakref/detail/object_header.hpp"

namespace weakref::detail {

class entry_node;

// Where death callbacks leave the nodes of entries whose object died. Callbacks run on any
// thread, so this is a lock-free stack: pushing is one CAS, and the container takes the whole
// stack at once before each operation. Closing (when the container goes) refuses later pushes.
class death_inbox {
 public:
  bool push(entry_node* node) noexcept;
  entry_node* take() noexcept { return head_.exchange(nullptr, std::memory_order_acquire); }
  entry_node* close() noexcept { return head_.exchange(closed(), std::memory_order_acquire); }
  bool empty() const noexcept { return head_.load(std::memory_order_relaxed) == nullptr; }

 private:
  static entry_node* closed() noexcept {
    static char sentinel;
    return reinterpret_cast<entry_node*>(&sentinel);
  }
  std::atomic<entry_node*> head_{nullptr};
};

// The weak reference a container entry holds on its object (CPython: KeyedRef, or the
// WeakKeyDictionary/WeakSet internal ref). Its callback only posts it to the inbox: the
// container removes the entry itself, on its own thread, so no container lock exists and no
// death ever waits for a container.
class entry_node final : public weakref_node {
 public:
  entry_node(object_header& header, std::weak_ptr<const void> owner,
             std::shared_ptr<death_inbox> inbox, std::size_t entry)
      : weakref_node(header, std::move(owner), node_kind::other, true),
        entry_index(entry),
        inbox_(std::move(inbox)) {}

  std::size_t entry_index;  // the entry's position; read and written by the container only
  entry_node* next_dead = nullptr;

 private:
  void fire() override {
    retain();  // the inbox's handle; the container releases it
    if (!inbox_->push(this)) release();
  }
  std::string_view where() const noexcept override { return "weak container"; }

  std::shared_ptr<death_inbox> inbox_;
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

// Mixes a hash so that linear probing spreads it (pointers and small integers included).
// Multiplying by an odd constant is a bijection, so for identity keys equal mixed hashes
// mean equal pointers.
inline std::uint64_t mix_hash(std::uint64_t h) noexcept {
  h ^= h >> 32;
  return h * 0x9E3779B97F4A7C15ull;
}

// weak_table<Entry>: entries in insertion order (a deque, so references stay valid while it
// grows) with tombstones, plus an open-addressing index of entry positions (linear probing,
// backward-shift deletion). Entry has `std::uint64_t hash` (mixed) and `node_handle node`.
//
// Deaths are applied before every operation: the entry becomes a tombstone at once (so size()
// and lookups are exact), but the deque is compacted only when no iterator exists (CPython's
// pending-removal rule), so iterators — which hold an index — never skip or repeat an entry.
template <class Entry>
class weak_table {
 public:
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
    if (inbox_) release_all(inbox_->close());
  }

  void swap(weak_table& other) noexcept {
    std::swap(inbox_, other.inbox_);
    entries_.swap(other.entries_);
    index_.swap(other.index_);
    std::swap(live_, other.live_);
    std::swap(iterators_, other.iterators_);
    std::swap(deferred_, other.deferred_);
  }

  // Applies the deaths posted since the last call. Cheap when there are none.
  // Loops: destroying a dead entry's value may kill further objects of this table.
  void collect() noexcept {
    if (!inbox_) return;
    while (auto* node = inbox_->take()) {
      while (node) {
        auto* next = node->next_dead;
        auto i = node->entry_index;
        // Only if the entry still holds this very node: a stale death must not remove an entry
        // that replaced it (CPython bpo-28427).
        if (i < entries_.size() && live(i) && entries_[i]->node.get() == node) tombstone(i);
        node->release();
        node = next;
      }
    }
    maybe_compact();
  }

  std::size_t size() const noexcept { return live_; }
  std::size_t end_index() const noexcept { return entries_.size(); }
  Entry* at(std::size_t i) noexcept { return live(i) ? &*entries_[i] : nullptr; }
  const Entry* at(std::size_t i) const noexcept { return live(i) ? &*entries_[i] : nullptr; }

  // The position of the live entry with `hash` for which `same(entry)` holds, or npos.
  template <class Same>
  std::size_t find(std::uint64_t hash, Same same) const {
    if (index_.empty()) return npos;
    auto mask = index_.size() - 1;
    auto fragment = static_cast<std::uint32_t>(hash);
    for (auto s = home(hash); index_[s].entry != 0; s = (s + 1) & mask) {
      if (index_[s].fragment != fragment) continue;
      auto& e = *entries_[index_[s].entry - 1];
      if (e.hash == hash && same(e)) return index_[s].entry - 1;
    }
    return npos;
  }

  // Appends an entry whose node `make_node(position)` creates; returns its position.
  // Strong guarantee: if anything throws, the table is unchanged.
  template <class MakeNode, class... Fields>
  std::size_t append(MakeNode make_node, std::uint64_t hash, Fields&&... fields) {
    reserve_index(live_ + 1);
    auto position = entries_.size();
    entries_.emplace_back(std::in_place, hash, node_handle(), std::forward<Fields>(fields)...);
    try {
      entries_.back()->node = make_node(position);
    } catch (...) {
      entries_.pop_back();
      throw;
    }
    insert_index(hash, position);
    ++live_;
    return position;
  }

  // Replaces the node of the entry at `i` (same key, new object); the entry keeps its place.
  template <class MakeNode>
  void renode(std::size_t i, MakeNode make_node) {
    entries_[i]->node = make_node(i);  // the old node's handle goes; a late death is stale
  }

  void erase(std::size_t i) noexcept {
    if (i >= entries_.size() || !live(i)) return;  // already gone (a stale iterator)
    tombstone(i);
    maybe_compact();
  }

  // The position of the newest live entry, or npos.
  std::size_t last() const noexcept {
    for (auto i = entries_.size(); i-- > 0;) {
      if (live(i)) return i;
    }
    return npos;
  }

  void clear() noexcept {
    if (iterators_ != 0) {  // keep keys and values the loop body may hold (see tombstone)
      for (std::size_t i = 0; i < entries_.size(); ++i) {
        if (live(i)) tombstone(i);
      }
      return;
    }
    entries_.clear();
    std::fill(index_.begin(), index_.end(), slot{});
    live_ = 0;
  }

  // Iterators register, so the deque is not compacted under them.
  void add_iterator() noexcept { ++iterators_; }
  void remove_iterator() noexcept {
    if (--iterators_ != 0) return;
    if (deferred_ != 0) {  // entries removed under iterators: their keys and values go now
      for (auto& e : entries_) {
        if (e && !e->node) e.reset();
      }
      deferred_ = 0;
    }
    maybe_compact();
  }

  // Created with the first entry, so empty and moved-from tables allocate nothing.
  const std::shared_ptr<death_inbox>& inbox() {
    if (!inbox_) inbox_ = std::make_shared<death_inbox>();
    return inbox_;
  }

 private:
  struct slot {
    std::uint32_t entry = 0;  // position + 1; 0 = empty
    std::uint32_t fragment = 0;
  };

  std::size_t home(std::uint64_t hash) const noexcept {
    return static_cast<std::size_t>(hash >> 32) & (index_.size() - 1);
  }

  void insert_index(std::uint64_t hash, std::size_t position) noexcept {
    auto mask = index_.size() - 1;
    auto s = home(hash);
    while (index_[s].entry != 0) s = (s + 1) & mask;
    index_[s] = {static_cast<std::uint32_t>(position + 1), static_cast<std::uint32_t>(hash)};
  }

  void erase_index(std::uint64_t hash, std::size_t position) noexcept {
    auto mask = index_.size() - 1;
    auto s = home(hash);
    while (index_[s].entry != position + 1) s = (s + 1) & mask;
    // Backward-shift deletion: pull later members of the probe run into the hole.
    for (auto next = (s + 1) & mask; index_[next].entry != 0; next = (next + 1) & mask) {
      auto want = home(entries_[index_[next].entry - 1]->hash);
      if (((next - want) & mask) >= ((next - s) & mask)) {
        index_[s] = index_[next];
        s = next;
      }
    }
    index_[s] = slot{};
  }

  void reserve_index(std::size_t count) {
    if (count * 4 <= index_.size() * 3) return;  // load factor 3/4
    std::size_t size = index_.empty() ? 8 : index_.size() * 2;
    while (count * 4 > size * 3) size *= 2;
    rebuild_index(size);
  }

  void rebuild_index(std::size_t size) {
    std::vector<slot> fresh(size);
    index_.swap(fresh);
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      if (live(i)) insert_index(entries_[i]->hash, i);
    }
  }

  bool live(std::size_t i) const noexcept { return entries_[i] && entries_[i]->node; }

  // Removes entry i. While an iterator exists, the entry's key and value stay (without their
  // node) until the last iterator goes: the loop body may hold references to them.
  void tombstone(std::size_t i) noexcept {
    erase_index(entries_[i]->hash, i);
    if (iterators_ == 0) {
      entries_[i].reset();
    } else {
      entries_[i]->node.reset();
      ++deferred_;
    }
    --live_;
  }

  // Drops tombstones once they outnumber live entries, unless an iterator holds a position.
  void maybe_compact() noexcept {
    if (iterators_ != 0 || entries_.size() - live_ <= std::max<std::size_t>(live_, 8)) return;
    std::deque<std::optional<Entry>> kept;
    for (auto& e : entries_) {
      if (!e || !e->node) continue;
      static_cast<entry_node*>(e->node.get())->entry_index = kept.size();
      kept.push_back(std::move(e));
    }
    entries_.swap(kept);
    std::fill(index_.begin(), index_.end(), slot{});
    for (std::size_t i = 0; i < entries_.size(); ++i) insert_index(entries_[i]->hash, i);
  }

  static void release_all(entry_node* node) noexcept {
    while (node) {
      auto* next = node->next_dead;
      node->release();
      node = next;
    }
  }

  std::shared_ptr<death_inbox> inbox_;  // shared with the entry nodes, which may outlive us
  std::deque<std::optional<Entry>> entries_;
  std::vector<slot> index_;
  std::size_t live_ = 0;
  std::size_t iterators_ = 0;
  std::size_t deferred_ = 0;  // removed entries kept for iterators
};

// Creates the entry node for `obj` in `table` at `position` and links it to the object.
template <class Entry, class T>
node_handle make_entry_node(weak_table<Entry>& table, object_header& header,
                            const std::shared_ptr<T>& obj, std::size_t position) {
  auto* node = new entry_node(header, std::weak_ptr<const void>(obj), table.inbox(), position);
  header.link(node);
  return node_handle(node);
}

// An iterator over a weak_table that yields only live entries, holding the current value —
// which contains a strong reference — so it cannot die under the loop body (CPython's
// iterators hold their last item too). Traits::get(entry) returns the value, or nullopt if the
// entry's object is dead. operator* returns a reference into the iterator, so `auto&`,
// `const auto&` and structured bindings all work; the iterator is an input iterator.
template <class Entry, class Traits>
class table_iterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = typename Traits::value_type;
  using reference = const value_type&;
  using pointer = const value_type*;
  using difference_type = std::ptrdiff_t;

  table_iterator() noexcept = default;
  // An iterator at the first live entry at or after position `i`; registers with the table.
  table_iterator(weak_table<Entry>* table, std::size_t i) : table_(table), i_(i) {
    table_->add_iterator();
    settle();
  }
  // The end iterator: holds no position, so it stays the end while the table grows.
  explicit table_iterator(weak_table<Entry>* table) noexcept
      : table_(table), i_(weak_table<Entry>::npos) {}
  // An iterator at exactly position `i` if its entry is alive, else the end (for find()).
  struct exact_position {};
  table_iterator(weak_table<Entry>* table, std::size_t i, exact_position) : table_(table), i_(i) {
    table_->add_iterator();
    table_->collect();
    if (auto* e = table_->at(i_)) {
      if (auto value = Traits::get(*e)) {
        current_.emplace(std::move(*value));
        return;
      }
    }
    i_ = weak_table<Entry>::npos;
    table_->remove_iterator();
  }
  static table_iterator exactly(weak_table<Entry>* table, std::size_t i) {
    return table_iterator(table, i, exact_position{});
  }
  table_iterator(const table_iterator& other)
      : table_(other.table_), i_(other.i_), current_(other.current_) {
    if (registered()) table_->add_iterator();
  }
  // Values may hold references (pair<const K&, ...>), so they are re-created, not assigned.
  table_iterator& operator=(const table_iterator& other) noexcept {
    if (this == &other) return *this;
    if (other.registered()) other.table_->add_iterator();
    if (registered()) table_->remove_iterator();
    table_ = other.table_;
    i_ = other.i_;
    current_.reset();
    if (other.current_) current_.emplace(*other.current_);
    return *this;
  }
  ~table_iterator() {
    if (registered()) table_->remove_iterator();
  }

  reference operator*() const noexcept { return *current_; }
  pointer operator->() const noexcept { return &*current_; }
  table_iterator& operator++() {
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
  bool registered() const noexcept { return table_ && i_ != weak_table<Entry>::npos; }
  bool at_end() const noexcept { return i_ == weak_table<Entry>::npos; }

  // Moves to the first live entry at or after i_, or to the end.
  void settle() {
    current_.reset();
    table_->collect();
    for (; i_ < table_->end_index(); ++i_) {
      if (auto* e = table_->at(i_)) {
        if (auto value = Traits::get(*e)) {
          current_.emplace(std::move(*value));
          return;
        }
      }
    }
    i_ = weak_table<Entry>::npos;  // exhausted: stays the end, and no longer holds a position
    table_->remove_iterator();
  }

  weak_table<Entry>* table_ = nullptr;
  std::size_t i_ = weak_table<Entry>::npos;
  std::optional<value_type> current_;
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
constexpr auto same_object = [](const auto&) { return true; };

// The position of `p`'s object in an identity-keyed table, after applying pending deaths; npos
// if absent, empty or not weakrefable.
template <class Entry, class T>
std::size_t find_object(weak_table<Entry>& table, const std::shared_ptr<T>& p) noexcept {
  auto hash = identity_hash_of(p);
  if (!hash) return weak_table<Entry>::npos;
  table.collect();
  return table.find(*hash, same_object);
}

}  // namespace weakref::detail
