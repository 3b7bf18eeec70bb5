// weakref/weak_value_map.hpp — weakref::weak_value_map<K, V>: a map from keys to objects held
// weakly; an entry leaves when its object dies. Python: weakref.WeakValueDictionary.
//
// Example (a cache that never keeps an image alive by itself):
//   weakref::weak_value_map<std::string, Image> cache;
//   std::shared_ptr<Image> get_image(const std::string& path) {
//     if (auto hit = cache.get(path)) return hit;   // std::shared_ptr<Image>, or nullptr
//     auto image = weakref::make_shared<Image>(path);
//     cache.insert_or_assign(path, image);
//     return image;                                  // the entry goes when the last user drops it
//   }
//
// Lifetime and thread-safety: like a std container, one map must not be used from several
// threads at once; but its values may die on any thread at any time, also while it is being
// iterated or changed. A dead value's entry is removed at the map's next operation. Lookups
// and iteration hand out strong references and never a dead value.
#pragma once

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "weakref/detail/handle_access.hpp"
#include "weakref/detail/weak_table.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"

namespace weakref {

// weakref::weak_value_map<K, V, Hash, KeyEqual>
//
// Keys are held strongly and compared with Hash and KeyEqual; values are std::shared_ptr<V>
// held weakly. Iteration follows insertion order and yields (const K&, std::shared_ptr<V>);
// assigning to an existing key keeps its place; popitem() removes the newest entry. Inserting a
// value not made by weakref::make_shared throws type_error. Absent keys: get() gives nullptr;
// at(), pop() and popitem() on an empty map throw std::out_of_range (Python: KeyError).
// If Hash or KeyEqual throws, the map is unchanged.
template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class weak_value_map {
  struct entry {
    template <class Key>
    entry(std::uint64_t h, detail::node_handle n, V* e, Key&& k)
        : hash(h), node(std::move(n)), element(e), key(std::forward<Key>(k)) {}
    std::uint64_t hash;
    detail::node_handle node;
    V* element;
    K key;
  };
  struct traits {
    using value_type = std::pair<const K&, std::shared_ptr<V>>;
    static std::optional<value_type> get(const entry& e) noexcept {
      if (auto value = detail::lock_as(e.node.get(), e.element)) return value_type(e.key, value);
      return std::nullopt;
    }
  };

 public:
  using key_type = K;
  using mapped_type = std::shared_ptr<V>;
  using value_type = std::pair<const K&, std::shared_ptr<V>>;
  using size_type = std::size_t;
  using hasher = Hash;
  using key_equal = KeyEqual;
  using iterator = detail::table_iterator<entry, traits>;

  weak_value_map() = default;
  explicit weak_value_map(Hash hash, KeyEqual equal = KeyEqual())
      : hash_(std::move(hash)), equal_(std::move(equal)) {}
  weak_value_map(std::initializer_list<std::pair<K, std::shared_ptr<V>>> items) { update(items); }
  // Copies map the same keys to the same objects, held weakly (Python: copy()).
  weak_value_map(const weak_value_map& other) : hash_(other.hash_), equal_(other.equal_) {
    update(other);
  }
  weak_value_map(weak_value_map&&) noexcept = default;
  weak_value_map& operator=(const weak_value_map& other) {
    if (this != &other) weak_value_map(other).swap(*this);
    return *this;
  }
  weak_value_map& operator=(weak_value_map&&) noexcept = default;

  // Iteration: (const K&, std::shared_ptr<V>) for each live value, in insertion order.
  iterator begin() const { return iterator(&table_, 0); }
  iterator end() const noexcept { return iterator(&table_); }

  size_type size() const noexcept {
    table_.collect();
    return table_.size();
  }
  bool empty() const noexcept { return size() == 0; }
  bool contains(const K& key) const { return get(key) != nullptr; }
  size_type count(const K& key) const { return contains(key); }
  iterator find(const K& key) const {
    auto i = position(key);
    return i == npos ? end() : iterator::exactly(&table_, i);
  }

  // Python: get(key) / get(key, default): the object, or nullptr / `fallback`.
  std::shared_ptr<V> get(const K& key) const {
    auto i = position(key);
    if (i == npos) return nullptr;
    auto* e = table_.at(i);
    return detail::lock_as(e->node.get(), e->element);
  }
  std::shared_ptr<V> get(const K& key, std::shared_ptr<V> fallback) const {
    auto value = get(key);
    return value ? value : fallback;
  }
  std::shared_ptr<V> at(const K& key) const {
    if (auto value = get(key)) return value;
    throw std::out_of_range("weakref::weak_value_map::at: no such key");
  }

  std::pair<iterator, bool> insert(const std::pair<K, std::shared_ptr<V>>& item) {
    return try_emplace(item.first, item.second);
  }
  // Inserts (key, value) unless `key` is present.
  template <class Key>
  std::pair<iterator, bool> try_emplace(Key&& key, const std::shared_ptr<V>& value) {
    for (;;) {  // if the present value dies meanwhile, the next place() replaces it
      auto [i, added] = place(key, value, false);
      if (auto it = iterator::exactly(&table_, i); it != end()) return {it, added};
    }
  }
  // Python: d[key] = value. An existing key keeps its place.
  template <class Key>
  std::pair<iterator, bool> insert_or_assign(Key&& key, const std::shared_ptr<V>& value) {
    auto [i, added] = place(std::forward<Key>(key), value, true);
    return {iterator::exactly(&table_, i), added};
  }

  // Python: setdefault(key, default): the live object for `key`, inserting `fallback` if absent.
  template <class Key>
  std::shared_ptr<V> setdefault(Key&& key, const std::shared_ptr<V>& fallback) {
    for (;;) {  // if the present value dies meanwhile, the next place() replaces it
      auto [i, added] = place(key, fallback, false);
      if (added) return fallback;
      auto* e = table_.at(i);
      if (auto value = detail::lock_as(e->node.get(), e->element)) return value;
    }
  }

  size_type erase(const K& key) {
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

  // Python: pop(key) (std::out_of_range if absent or dead) and pop(key, default).
  std::shared_ptr<V> pop(const K& key) {
    if (auto value = pop(key, nullptr)) return value;
    throw std::out_of_range("weakref::weak_value_map::pop: no such key");
  }
  std::shared_ptr<V> pop(const K& key, std::shared_ptr<V> fallback) {
    auto i = position(key);
    if (i == npos) return fallback;
    auto value = detail::lock_as(table_.at(i)->node.get(), table_.at(i)->element);
    table_.erase(i);
    return value ? value : fallback;
  }
  // Removes and returns the newest live entry. Throws std::out_of_range if empty.
  std::pair<K, std::shared_ptr<V>> popitem() {
    for (;;) {
      table_.collect();
      auto i = table_.last();
      if (i == npos) throw std::out_of_range("weakref::weak_value_map::popitem: empty map");
      auto* e = table_.at(i);
      auto value = detail::lock_as(e->node.get(), e->element);
      K key = std::move(e->key);
      table_.erase(i);
      if (value) return {std::move(key), std::move(value)};  // else it died after collect()
    }
  }

  void clear() noexcept { table_.clear(); }
  void swap(weak_value_map& other) noexcept {
    table_.swap(other.table_);
    std::swap(hash_, other.hash_);
    std::swap(equal_, other.equal_);
  }

  // Python: update(other): insert_or_assign every (key, value) of `items`.
  template <class Range>
  void update(const Range& items) {
    for (const auto& [key, value] : items) insert_or_assign(key, value);
  }
  void update(std::initializer_list<std::pair<K, std::shared_ptr<V>>> items) {
    for (const auto& [key, value] : items) insert_or_assign(key, value);
  }
  weak_value_map copy() const { return *this; }

  // Python: valuerefs(): a ref to each live value, sharing the map's own weak references.
  std::vector<ref<V>> valuerefs() const {
    std::vector<ref<V>> refs;
    table_.collect();
    for (std::size_t i = 0; i < table_.end_index(); ++i) {
      if (auto* e = table_.at(i); e && e->node->alive()) {
        refs.push_back(detail::handle_access::make<ref<V>>(
            detail::node_handle::share(*e->node.get()), e->element));
      }
    }
    return refs;
  }
  std::vector<K> keys() const {
    return collect_each([](auto& kv) { return K(kv.first); });
  }
  std::vector<std::shared_ptr<V>> values() const {
    return collect_each([](auto& kv) { return kv.second; });
  }
  std::vector<std::pair<K, std::shared_ptr<V>>> items() const {
    return collect_each(
        [](auto& kv) { return std::pair<K, std::shared_ptr<V>>(kv.first, kv.second); });
  }

  // Same keys mapped to the same objects (owner identity), in any order.
  friend bool operator==(const weak_value_map& a, const weak_value_map& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [key, value] : a) {
      auto other = b.get(key);
      if (!other || other.owner_before(value) || value.owner_before(other)) return false;
    }
    return true;
  }

 private:
  static constexpr std::size_t npos = detail::weak_table<entry>::npos;

  std::size_t position(const K& key) const {
    auto hash = detail::mix_hash(hash_(key));
    table_.collect();
    return table_.find(hash, [&](const entry& e) { return equal_(e.key, key); });
  }

  // Puts `value` under `key`: appends if absent; if present, replaces the value when `assign`
  // or when the old one is dead (its entry is as good as gone). Returns (position, added).
  template <class Key>
  std::pair<std::size_t, bool> place(Key&& key, const std::shared_ptr<V>& value, bool assign) {
    auto& header = detail::header_of(value, "weakref::weak_value_map");
    auto hash = detail::mix_hash(hash_(key));  // user code first: if it throws, nothing changed
    table_.collect();
    auto i = table_.find(hash, [&](const entry& e) { return equal_(e.key, key); });
    auto make_node = [&](std::size_t at) {
      return detail::make_entry_node(table_, header, value, at);
    };
    if (i == npos)
      return {table_.append(make_node, hash, value.get(), std::forward<Key>(key)), true};
    auto* e = table_.at(i);
    if (assign || !e->node->alive()) {
      table_.renode(i, make_node);
      e->element = value.get();
      return {i, !assign};
    }
    return {i, false};
  }

  template <class F>
  auto collect_each(F f) const {
    std::vector<decltype(f(std::declval<value_type&>()))> result;
    for (auto& kv : *this) result.push_back(f(kv));
    return result;
  }

  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] KeyEqual equal_;
  mutable detail::weak_table<entry> table_;
};

}  // namespace weakref
