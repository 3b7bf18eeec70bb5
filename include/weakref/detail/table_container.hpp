// weakref/detail/table_container.hpp — what weak_value_map, weak_key_map and weak_set share:
// their table, iteration, size, and the refs to their elements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "weakref/detail/handle_access.hpp"
#include "weakref/detail/header_lookup.hpp"
#include "weakref/detail/object_header.hpp"
#include "weakref/detail/table_index.hpp"
#include "weakref/detail/table_iterator.hpp"
#include "weakref/detail/weak_table.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"

namespace weakref::detail {

// Identity-keyed tables (weak_key_map, weak_set) hash the object's header: its address is the
// owner's identity, so a new object at a dead key's address never finds the dead key's entry.
inline std::uint64_t identity_hash(const object_header* header) noexcept {
  return mix_hash(reinterpret_cast<std::uintptr_t>(header));
}

// The identity hash of `p`'s object, or nothing if `p` is empty or not weakrefable.
template <class T>
std::optional<std::uint64_t> identity_hash_of(const std::shared_ptr<T>& p) noexcept {
  if (auto* header = find_header(p)) return identity_hash(header);
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

// A base the containers inherit privately, re-exporting the public members with `using`.
// Fields has `element`, the pointer the container hands out; Traits makes iteration values.
template <class Fields, class Traits>
class table_container {
 public:
  using size_type = std::size_t;
  using iterator = table_iterator<Fields, Traits>;

  // Iteration in insertion order, over live entries only. The non-const begin() first applies
  // the deaths posted so far (entries that died before the loop are not passed, as in CPython,
  // where their callbacks already removed them); the const one only reads, so several threads
  // may iterate one const container at once.
  iterator begin() { return tidy() ? iterator(&table_, 0) : iterator(); }
  iterator begin() const { return iterator(&table_, 0); }
  iterator end() const noexcept { return iterator(&table_); }

  // The number of live entries. On a const container it only reads (several threads may ask
  // at once); on a non-const one it first applies the deaths posted so far, and those that
  // destroying their entries causes (a dead key's value that owned another key), so that it
  // is exact as CPython's len() is.
  size_type size() const noexcept { return table_.size(); }
  size_type size() noexcept { return tidy() ? table_.size() : 0; }
  bool empty() const noexcept { return size() == 0; }
  bool empty() noexcept { return size() == 0; }
  void clear() noexcept {
    graveyard g;  // destroyed last: a value's destructor may destroy this container
    table_.clear(g);
  }

  // For weakref::gc::visitor: each live entry's weak reference, and what its fields own (the
  // values of a weak_key_map of ephemerons only when `values`: the collector visits those
  // itself). With `hold_keys`, each value is read while its key is held, and not at all if the
  // key is dead: a collection on another thread moves the edges out of the values of dead keys
  // (and a held key is alive to it).
  template <class Visitor>
  void weakref_gc_traverse_(Visitor& visit, bool values, bool hold_keys = false) {
    for (std::size_t i = 0; i < table_.end_index(); ++i) {
      auto* n = table_.at(i);
      if (!n) continue;
      visit.weakref_gc_weak_(*n);
      if constexpr (requires { n->fields().key; }) visit.weakref_gc_element_(i, n->fields().key);
      if constexpr (requires { n->fields().value; }) {
        if (!values) continue;
        if (hold_keys) {  // held while the value is read, let go after the traverse
          visit.weakref_gc_room_for_key_();
          auto key = n->lock_element();
          if (!key) continue;
          visit.weakref_gc_hold_key_(std::move(key));
        }
        visit.weakref_gc_element_(i, n->fields().value);
      }
    }
  }

  // Removes the entry at `it`; returns an iterator to the next one. erase(end()) is a no-op
  // that returns end() (std containers leave it undefined; CPython has no iterator erase), as
  // is erasing with an iterator whose container is gone; an iterator whose entry was already
  // removed erases nothing and moves on.
  iterator erase(const iterator& it) {
    if (it == end()) return end();
    graveyard g;
    auto i = it.position();
    table_.erase(i, g);
    return iterator(&table_, i + 1);
  }

 protected:
  using table = weak_table<Fields>;
  using node = typename table::node;
  using element_type = typename Fields::element_type;
  // Declared first in each changing operation: what it takes out of the table is destroyed
  // when it returns, after its last use of the table (see weak_table).
  using graveyard = typename table::graveyard;

  // Removes the live entries whose value satisfies `pred`; returns how many (C++20's uniform
  // erasure: each container's erase_if calls this). `pred` runs with the entry's element held,
  // in insertion order; it may change the container, as any loop body may, or destroy it (then
  // it stops). If `pred` throws, the entries removed so far stay removed.
  template <class Pred>
  size_type erase_where(Pred& pred) {
    typename table::life_guard guard(table_);
    size_type removed = 0;
    for (auto it = begin(); it != iterator();) {  // not end(): the container may be gone
      bool match = pred(*it);
      if (guard.destroyed) break;
      if (!match) {
        ++it;
      } else if (it == iterator()) {
        break;  // `pred` assigned another container over this one: `it` was detached
      } else {
        removed += table_.at(it.position()) != nullptr;  // unless `pred` removed it
        it = erase(it);
      }
    }
    return removed;
  }

  // Applies every posted death, and those that destroying the dead entries' fields causes in
  // turn (CPython's callbacks remove entries at once, transitively). Returns false if a
  // destructor destroyed the container meanwhile.
  bool tidy() noexcept {
    typename table::life_guard guard(table_);
    for (;;) {
      bool more;
      {
        graveyard g;
        table_.settle(g);
        more = !g.empty();
      }  // destructors run here
      if (guard.destroyed) return false;
      if (!more) return true;
    }
  }

  // f(item) for each item of `items`, as a changing operation's loop (update()). User code runs
  // between items (what f took out or replaced, the item the range lets go of): if it destroyed
  // the container, the loop stops; if it replaced the contents, it goes on with those.
  // GCC 12 takes the guard, which the table lists until it is destroyed, for a dangling pointer.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
  template <class Range, class F>
  void for_each_while_alive(const Range& items, F f) {
    typename table::life_guard guard(table_);
    for (const auto& item : items) {
      if (guard.destroyed) return;
      f(item);
    }
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  // The entry under `hash` for which `same(fields)` holds, appended on `element` (whose header
  // is `header`) with fields made from `fields...` if absent; and whether it was added. Applies
  // the posted deaths first (into `g`). If the append throws, the table is unchanged.
  // Making the fields runs user code (constructors), which may change the container but not
  // destroy it: if it changed, the entry is looked for again, and if it is there now (that code
  // inserted it), the fields made go to `g` and that entry is the result.
  template <class Same, class... A>
  std::pair<node*, bool> find_or_append(graveyard& g, object_header& header,
                                        const std::shared_ptr<element_type>& element,
                                        std::uint64_t hash, Same same, A&&... fields) {
    table_.settle(g);
    if (auto* n = table_.find(hash, same)) return {n, false};
    const auto version = table_.version();
    auto* n = table_.make(header, element, hash, std::forward<A>(fields)...);
    try {
      if (table_.version() != version) [[unlikely]] {
        table_.settle(g);
        if (auto* found = table_.find(hash, same)) {
          table::discard(n, g);
          return {found, false};
        }
      }
      table_.link(n, header);
    } catch (...) {  // Same threw, or the link could not allocate
      table::discard(n, g);
      throw;
    }
    return {n, true};
  }
  // find_or_append for an identity-keyed container: the entry of `obj`'s object. Throws
  // type_error (naming `facility`) if `obj` is empty or not weakrefable.
  template <class... A>
  std::pair<node*, bool> place_object(graveyard& g, const std::shared_ptr<element_type>& obj,
                                      const char* facility, A&&... fields) {
    auto& header = header_of(obj, facility);
    return find_or_append(g, header, obj, identity_hash(&header), same_object,
                          std::forward<A>(fields)...);
  }

  // What an insertion returns for `placed` (its entry, and whether it was added): an iterator
  // that takes its value on first use.
  std::pair<iterator, bool> inserted(std::pair<node*, bool> placed) noexcept {
    return {std::piecewise_construct,
            std::forward_as_tuple(&table_, *placed.first, typename iterator::inserted_at{}),
            std::forward_as_tuple(placed.second)};
  }

  // Removes the entry that `find()` gives once the posted deaths are applied, if any; returns
  // the number removed (0 or 1).
  template <class Find>
  size_type erase_found(Find find) {
    graveyard g;
    table_.settle(g);
    auto* n = find();
    if (!n) return 0;
    table_.erase(n, g);
    return 1;
  }

  // Removes the newest entry whose object is alive and returns item(element, fields) for it
  // (item may move from the fields: once the entry is out of the table, unless their moves may
  // throw, for the strong guarantee). Entries passed on the way,
  // whose objects died since the posted deaths were applied (a callback of the dying object may
  // pop), are removed too, with their fields untouched: into the graveyard, so their destructors
  // run after the last use of the table. Throws std::out_of_range(`empty`) if none is.
  template <class Item>
  auto pop_newest(const char* empty, Item item) {
    graveyard g;
    for (;;) {
      table_.settle(g);
      auto* n = table_.last();
      if (!n) throw std::out_of_range(empty);
      if (auto element = n->lock_element()) {
        if constexpr (std::is_nothrow_move_constructible_v<Fields>) {
          // Out of the table first: item's moves are user code, which may change or destroy
          // the container. The fields stay in the graveyard until it returns (or, while an
          // iterator exists, in the table as a pending removal).
          table_.erase(n, g);
          return item(std::move(element), n->fields());
        } else {
          // Moves that may throw: the entry stays until they succeeded (strong guarantee), so
          // they must not change the container.
          auto result = item(std::move(element), n->fields());
          table_.erase(n, g);
          return result;
        }
      }
      table_.erase(n, g);  // it died after settle(): try the next one
    }
  }

  // A strong reference to `n`'s element, or null if its object died.
  static auto lock(const node& n) noexcept { return n.lock_element(); }

  // find(): an iterator at `n`, or the end if `n` is null or its object died.
  iterator iterator_at(node* n) const { return n ? iterator::exactly(&table_, *n) : end(); }

  // A ref to each live element, sharing the container's own weak references (Python's
  // keyrefs() / valuerefs()).
  template <class T>
  std::vector<ref<T>> element_refs() const {
    std::vector<ref<T>> refs;
    for (std::size_t i = 0; i < table_.end_index(); ++i) {
      auto* n = table_.at(i);
      if (auto element = n ? n->lock_element() : nullptr) {
        refs.push_back(handle_access::make<ref<T>>(node_handle::share(*n), element.get()));
      }
    }
    return refs;
  }

  // f(value) for each live entry, in order, as a vector.
  template <class F>
  auto collect_each(F f) const {
    std::vector<decltype(f(std::declval<typename Traits::value_type&>()))> result;
    for (auto& value : *this) result.push_back(f(value));
    return result;
  }

  mutable table table_;
};

}  // namespace weakref::detail
