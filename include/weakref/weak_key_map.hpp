// weakref/weak_key_map.hpp — weakref::weak_key_map<K, V>: a map whose keys are objects held
// weakly, by identity; an entry leaves when its key object dies. Python: WeakKeyDictionary.
//
// Example (metadata in a side table on objects the code does not own):
//   weakref::weak_key_map<Widget, Metadata> meta;
//   auto w = weakref::make_shared<Widget>();
//   meta[w].created = now();                        // inserts a default Metadata
//   for (auto& [widget, data] : meta) data.seen++;  // (std::shared_ptr<Widget>, Metadata&)
//   w.reset();                                       // the entry and its Metadata are gone
//
// Lifetime and thread-safety: like a std container, one map must not be used from several
// threads at once; but its key objects may die on any thread at any time, also while it is
// being iterated or changed. A dead key's entry (and its value) is removed at the map's next
// operation. Iteration yields strong references to the keys and never a dead key.
// NOTE: a value that owns its key keeps the key alive forever (CPython has no ephemerons either).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "weakref/detail/handle_access.hpp"
#include "weakref/detail/weak_table.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"

namespace weakref {

// weakref::weak_key_map<K, V>
//
// Keys are std::shared_ptr<K> compared by object identity (the owner). Iteration follows
// insertion order; assigning to an existing key keeps its place; popitem() removes the newest.
// Inserting a key not made by weakref::make_shared throws type_error; looking one up finds
// nothing. Absent keys: get() gives an empty optional; at(), pop() and popitem() on an empty
// map throw std::out_of_range (Python: KeyError).
template <class K, class V>
class weak_key_map {
  struct entry {
    template <class... A>
    entry(std::uint64_t h, detail::node_handle n, K* e, A&&... value)
        : hash(h), node(std::move(n)), element(e), value(std::forward<A>(value)...) {}
    std::uint64_t hash;
    detail::node_handle node;
    K* element;
    V value;
  };
  struct traits {
    using value_type = std::pair<std::shared_ptr<K>, V&>;
    static std::optional<value_type> get(entry& e) noexcept {
      if (auto key = detail::lock_as(e.node.get(), e.element)) return value_type(key, e.value);
      return std::nullopt;
    }
  };

 public:
  using key_type = std::shared_ptr<K>;
  using mapped_type = V;
  using value_type = std::pair<std::shared_ptr<K>, V&>;
  using size_type = std::size_t;
  using iterator = detail::table_iterator<entry, traits>;

  weak_key_map() = default;
  weak_key_map(std::initializer_list<std::pair<std::shared_ptr<K>, V>> items) { update(items); }
  // Copies hold the same keys weakly, with copies of the values (Python: copy()).
  weak_key_map(const weak_key_map& other) { update(other); }
  weak_key_map(weak_key_map&&) noexcept = default;
  weak_key_map& operator=(const weak_key_map& other) {
    if (this != &other) weak_key_map(other).swap(*this);
    return *this;
  }
  weak_key_map& operator=(weak_key_map&&) noexcept = default;

  // Iteration: (std::shared_ptr<K>, V&) for each live key, in insertion order.
  iterator begin() const { return iterator(&table_, 0); }
  iterator end() const noexcept { return iterator(&table_); }

  size_type size() const noexcept {
    table_.collect();
    return table_.size();
  }
  bool empty() const noexcept { return size() == 0; }
  bool contains(const key_type& key) const noexcept { return position(key) != npos; }
  size_type count(const key_type& key) const noexcept { return contains(key); }
  iterator find(const key_type& key) const {
    auto i = position(key);
    return i == npos ? end() : iterator::exactly(&table_, i);
  }

  // The value for `key`, inserting V() first if absent (std::unordered_map's operator[]).
  V& operator[](const key_type& key) { return table_.at(emplace_at(key).first)->value; }

  V& at(const key_type& key) { return table_.at(checked(key, "at"))->value; }
  const V& at(const key_type& key) const { return table_.at(checked(key, "at"))->value; }

  // Python: get(key) / get(key, default).
  std::optional<V> get(const key_type& key) const {
    auto i = position(key);
    return i == npos ? std::nullopt : std::optional<V>(table_.at(i)->value);
  }
  V get(const key_type& key, V fallback) const {
    auto i = position(key);
    return i == npos ? std::move(fallback) : table_.at(i)->value;
  }

  std::pair<iterator, bool> insert(const std::pair<key_type, V>& item) {
    return try_emplace(item.first, item.second);
  }
  template <class... A>
  std::pair<iterator, bool> try_emplace(const key_type& key, A&&... args) {
    auto [i, added] = emplace_at(key, std::forward<A>(args)...);
    return {iterator::exactly(&table_, i), added};
  }
  // Python: d[key] = value. An existing key keeps its place.
  template <class M>
  std::pair<iterator, bool> insert_or_assign(const key_type& key, M&& value) {
    auto [i, added] = emplace_at(key, std::forward<M>(value));
    if (!added) table_.at(i)->value = std::forward<M>(value);
    return {iterator::exactly(&table_, i), added};
  }

  // Python: setdefault(key, default): the value for `key`, inserting `fallback` if absent.
  V& setdefault(const key_type& key, V fallback = V()) {
    return table_.at(emplace_at(key, std::move(fallback)).first)->value;
  }

  size_type erase(const key_type& key) noexcept {
    auto i = position(key);
    if (i == npos) return 0;
    table_.erase(i);
    return 1;
  }
  iterator erase(const iterator& it) {
    auto i = it.position();
    table_.erase(i);
    return iterator(&table_, i + 1);
  }

  // Python: pop(key) (std::out_of_range if absent) and pop(key, default).
  V pop(const key_type& key) { return take(checked(key, "pop")); }
  V pop(const key_type& key, V fallback) {
    auto i = position(key);
    return i == npos ? std::move(fallback) : take(i);
  }
  // Removes and returns the newest entry. Throws std::out_of_range if empty.
  std::pair<key_type, V> popitem() {
    for (;;) {
      table_.collect();
      auto i = table_.last();
      if (i == npos) throw std::out_of_range("weakref::weak_key_map::popitem: empty map");
      auto key = detail::lock_as(table_.at(i)->node.get(), table_.at(i)->element);
      auto value = take(i);
      if (key) return {std::move(key), std::move(value)};  // else it died after collect()
    }
  }

  void clear() noexcept { table_.clear(); }
  void swap(weak_key_map& other) noexcept { table_.swap(other.table_); }

  // Python: update(other): insert_or_assign every (key, value) of `items`.
  template <class Range>
  void update(const Range& items) {
    for (const auto& [key, value] : items) insert_or_assign(key, value);
  }
  void update(std::initializer_list<std::pair<key_type, V>> items) {
    for (const auto& [key, value] : items) insert_or_assign(key, value);
  }
  weak_key_map copy() const { return *this; }

  // Python: keyrefs(): a ref to each live key, sharing the map's own weak references.
  std::vector<ref<K>> keyrefs() const {
    std::vector<ref<K>> refs;
    for (std::size_t i = 0; i < table_.end_index(); ++i) {
      if (auto* e = table_.at(i); e && e->node->alive()) {
        refs.push_back(detail::handle_access::make<ref<K>>(
            detail::node_handle::share(*e->node.get()), e->element));
      }
    }
    return refs;
  }
  std::vector<key_type> keys() const {
    return collect_each([](auto& kv) { return kv.first; });
  }
  std::vector<V> values() const {
    return collect_each([](auto& kv) { return kv.second; });
  }
  std::vector<std::pair<key_type, V>> items() const {
    return collect_each([](auto& kv) { return std::pair<key_type, V>(kv.first, kv.second); });
  }

  // Same live keys (by identity) with equal values, in any order.
  friend bool operator==(const weak_key_map& a, const weak_key_map& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [key, value] : a) {
      auto i = b.position(key);
      if (i == npos || !(b.table_.at(i)->value == value)) return false;
    }
    return true;
  }

 private:
  static constexpr std::size_t npos = detail::weak_table<entry>::npos;

  std::size_t position(const key_type& key) const noexcept {
    return detail::find_object(table_, key);
  }
  std::size_t checked(const key_type& key, const char* what) const {
    auto i = position(key);
    if (i == npos)
      throw std::out_of_range(std::string("weakref::weak_key_map::") + what + ": no such key");
    return i;
  }
  // The position of `key`'s entry, constructing its value from `args` if absent; and whether
  // it was added.
  template <class... A>
  std::pair<std::size_t, bool> emplace_at(const key_type& key, A&&... args) {
    auto& header = detail::header_of(key, "weakref::weak_key_map");
    table_.collect();
    auto hash = detail::identity_hash(&header);
    if (auto i = table_.find(hash, detail::same_object); i != npos) return {i, false};
    auto i = table_.append(
        [&](std::size_t at) { return detail::make_entry_node(table_, header, key, at); }, hash,
        key.get(), std::forward<A>(args)...);
    return {i, true};
  }

  V take(std::size_t i) {
    V value = std::move(table_.at(i)->value);
    table_.erase(i);
    return value;
  }

  template <class F>
  auto collect_each(F f) const {
    std::vector<decltype(f(std::declval<value_type&>()))> result;
    for (auto& kv : *this) result.push_back(f(kv));
    return result;
  }

  mutable detail::weak_table<entry> table_;
};

}  // namespace weakref
