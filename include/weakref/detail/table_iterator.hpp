// weakref/detail/table_iterator.hpp — the iterator of weak_value_map, weak_key_map and
// weak_set: it walks its weak_table's insertion order, registered with the table while it holds
// a position, and holds the current element so that it cannot die under the loop body.
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>

#include "weakref/detail/table_cursor.hpp"
#include "weakref/detail/weak_table.hpp"

namespace weakref::detail {

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
    table_->cursors().add(*this);
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
  // Constructed in place (std::piecewise_construct): moving an iterator may take the table's
  // iterator lock.
  struct inserted_at {};
  table_iterator(weak_table<Fields>* table, node& n, inserted_at) noexcept
      : cursor(table, n.position) {
    table_->cursors().add_fresh(*this);
  }
  table_iterator(const table_iterator& other) noexcept
      : cursor(other.table_, other.i_), current_(other.current_) {
    if (registered()) table_->cursors().add(*this);
  }
  // Takes over `other`'s place and element (no reference count touched); `other` is left
  // at the end.
  table_iterator(table_iterator&& other) noexcept
      : cursor(other.table_, other.i_), current_(std::move(other.current_)) {
    if (registered()) table_->cursors().move(other, *this);
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
  // A copy at the entry passed (it keeps that entry's value): `*it++` works, and the iterator
  // models std::input_iterator, so the containers are std::ranges::input_range.
  table_iterator operator++(int) {
    auto passed = *this;
    ++*this;
    return passed;
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
    table_->cursors().add(*this);
  }
  void leave() noexcept {
    if (registered()) table_->cursors().remove(*this);
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
