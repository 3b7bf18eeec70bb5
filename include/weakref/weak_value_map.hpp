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
// Lifetime and thread-safety: like a std container, its const members may run on several
// threads at once (they only read), and any other use needs the container to itself; but its
// values may die on any thread at any time, also while it is being iterated or changed. A
// death only posts a notice (lock-free); the entry leaves at the next non-const operation
// (size(), begin(), keys() and the like included, which also apply the deaths that destroying
// dead entries causes, so they are exact as CPython's). Const members skip dead entries. Entries
// removed while an iterator exists keep their fields until the first non-const operation after
// the last iterator is gone (CPython's pending removals): a kept iterator delays them.
// User code run by an operation (a destructor of a value, a key or an element) runs after the
// operation's last use of the container, so it may destroy or change the container. So may the
// move of a key out of popitem(); constructing a new entry's key and Hash may change the map,
// not destroy it; KeyEqual and moving a key into a replacement entry may do neither (see the
// reference, "User code during an operation").
// Lookups and iteration hand out strong references and never a dead value.
#pragma once

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "weakref/detail/table_container.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"

namespace weakref {

namespace detail {
template <class K, class V>
struct value_map_fields {
  using element_type = V;
  template <class Key>
  value_map_fields(std::in_place_t, Key&& k) : key(std::forward<Key>(k)) {}
  K key;
};
// Hash and KeyEqual accept keys of other types than K (std::unordered_map's heterogeneous
// lookup, C++20).
template <class Hash, class KeyEqual>
concept transparent_lookup = requires {
  typename Hash::is_transparent;
  typename KeyEqual::is_transparent;
};
template <class K, class V>
struct value_map_traits {
  using value_type = std::pair<const K&, std::shared_ptr<V>>;
  static value_type value(const table_node<value_map_fields<K, V>>& n,
                          std::shared_ptr<V> element) noexcept {
    return value_type(n.fields().key, std::move(element));
  }
};
}  // namespace detail

// weakref::weak_value_map<K, V, Hash, KeyEqual>
//
// Keys are held strongly and compared with Hash and KeyEqual; values are std::shared_ptr<V>
// held weakly. Iteration follows insertion order and yields (const K&, std::shared_ptr<V>);
// assigning to an existing key keeps its place; popitem() removes the newest entry. Inserting a
// value not made by weakref::make_shared throws type_error. Absent keys: get() gives nullptr;
// at(), pop() and popitem() on an empty map throw std::out_of_range (Python: KeyError).
// If Hash or KeyEqual throws, the map is unchanged. With a transparent Hash and KeyEqual (both
// define is_transparent), find, contains, count, get, at, erase and pop also take a key of
// another type that they accept, as std::unordered_map's do: a std::string_view looks up
// std::string keys without making a string. Equal keys must hash alike, whatever their type.
template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class weak_value_map
    : detail::table_container<detail::value_map_fields<K, V>, detail::value_map_traits<K, V>> {
  using base =
      detail::table_container<detail::value_map_fields<K, V>, detail::value_map_traits<K, V>>;
  using fields = detail::value_map_fields<K, V>;
  using base::collect_each, base::erase_found, base::find_or_append, base::inserted,
      base::iterator_at, base::lock, base::pop_newest, base::table_;
  using typename base::graveyard, typename base::node;
  // A key type other than K that the lookups take: any that Hash and KeyEqual accept, if they
  // are transparent.
  template <class Key>
  static constexpr bool other_key =
      detail::transparent_lookup<Hash, KeyEqual> && !std::is_same_v<std::remove_cvref_t<Key>, K>;

 public:
  using key_type = K;
  using mapped_type = std::shared_ptr<V>;
  using value_type = std::pair<const K&, std::shared_ptr<V>>;
  using typename base::iterator;
  using typename base::size_type;
  using hasher = Hash;
  using key_equal = KeyEqual;
  // Iteration: (const K&, std::shared_ptr<V>) for each live value, in insertion order.
  using base::begin, base::end, base::size, base::empty, base::clear, base::erase;
  using base::weakref_gc_traverse_;  // for weakref::gc::visitor

  weak_value_map() = default;
  explicit weak_value_map(Hash hash, KeyEqual equal = KeyEqual())
      : hash_(std::move(hash)), equal_(std::move(equal)) {}
  weak_value_map(std::initializer_list<std::pair<K, std::shared_ptr<V>>> items) { update(items); }
  // Copies map the same keys to the same objects, held weakly (Python: copy()).
  weak_value_map(const weak_value_map& other) : hash_(other.hash_), equal_(other.equal_) {
    update(other);
  }
  // Moves and swaps are noexcept when Hash's and KeyEqual's are. If one of theirs throws, the
  // maps involved are left valid but empty (an entry must never stay filed under a hash that
  // changed): the source of a move construction, both maps of a move assignment or a swap, and
  // the target of a copy assignment (which copies, then swaps).
  weak_value_map(weak_value_map&&) noexcept(
      std::is_nothrow_move_constructible_v<Hash>&& std::is_nothrow_move_constructible_v<KeyEqual>) =
      default;  // the table moves first: if a functor's move throws, `other` is left empty
  weak_value_map& operator=(const weak_value_map& other) {
    if (this != &other) weak_value_map(other).swap(*this);
    return *this;
  }
  weak_value_map& operator=(weak_value_map&& other) noexcept(
      std::is_nothrow_move_assignable_v<Hash>&& std::is_nothrow_move_assignable_v<KeyEqual>) {
    if (this == &other) return *this;
    functors_or_empty(other, [&] {  // the functors first, then the table, which cannot throw
      hash_ = std::move(other.hash_);
      equal_ = std::move(other.equal_);
    });
    table_ = std::move(other.table_);
    return *this;
  }

  // Each lookup by key also comes as a template for other key types (heterogeneous lookup),
  // present only with a transparent Hash and KeyEqual.
  bool contains(const K& key) const { return get(key) != nullptr; }
  template <class Key>
  bool contains(const Key& key) const requires other_key<Key> {
    return get(key) != nullptr;
  }
  size_type count(const K& key) const { return contains(key); }
  template <class Key>
  size_type count(const Key& key) const requires other_key<Key> {
    return contains(key);
  }
  iterator find(const K& key) const { return iterator_at(lookup(key)); }
  template <class Key>
  iterator find(const Key& key) const requires other_key<Key> {
    return iterator_at(lookup(key));
  }

  // Python: get(key) / get(key, default): the object, or nullptr / `fallback`.
  std::shared_ptr<V> get(const K& key) const { return get_any(key); }
  template <class Key>
  std::shared_ptr<V> get(const Key& key) const requires other_key<Key> {
    return get_any(key);
  }
  std::shared_ptr<V> get(const K& key, std::shared_ptr<V> fallback) const {
    return get_any(key, std::move(fallback));
  }
  template <class Key>
  std::shared_ptr<V> get(const Key& key,
                         std::shared_ptr<V> fallback) const requires other_key<Key> {
    return get_any(key, std::move(fallback));
  }
  std::shared_ptr<V> at(const K& key) const { return at_any(key); }
  template <class Key>
  std::shared_ptr<V> at(const Key& key) const requires other_key<Key> {
    return at_any(key);
  }

  std::pair<iterator, bool> insert(const std::pair<K, std::shared_ptr<V>>& item) {
    return try_emplace(item.first, item.second);
  }
  // Inserts (key, value) unless `key` is present.
  template <class Key>
  std::pair<iterator, bool> try_emplace(Key&& key, const std::shared_ptr<V>& value) {
    graveyard g;
    for (;;) {  // if the present value dies meanwhile, the next place() replaces it
      auto [n, added] = place(g, key, value, false);
      if (added) return inserted({n, true});
      if (auto it = iterator::exactly(&table_, *n); it != end()) return {it, false};
    }
  }
  // Python: d[key] = value. An existing key keeps its place.
  template <class Key>
  std::pair<iterator, bool> insert_or_assign(Key&& key, const std::shared_ptr<V>& value) {
    graveyard g;
    return inserted(place(g, std::forward<Key>(key), value, true));
  }

  // Python: setdefault(key, default): the live object for `key`, inserting `fallback` if absent.
  template <class Key>
  std::shared_ptr<V> setdefault(Key&& key, const std::shared_ptr<V>& fallback) {
    graveyard g;
    for (;;) {  // if the present value dies meanwhile, the next place() replaces it
      auto [n, added] = place(g, key, fallback, false);
      if (added) return fallback;
      if (auto value = lock(*n)) return value;
    }
  }

  size_type erase(const K& key) { return erase_any(key); }
  template <class Key>
  size_type erase(const Key& key) requires(other_key<Key> &&
                                           !std::is_convertible_v<const Key&, iterator>) {
    return erase_any(key);
  }

  // Python: pop(key) (std::out_of_range if absent or dead) and pop(key, default).
  std::shared_ptr<V> pop(const K& key) { return pop_any(key); }
  template <class Key>
  std::shared_ptr<V> pop(const Key& key) requires other_key<Key> {
    return pop_any(key);
  }
  std::shared_ptr<V> pop(const K& key, std::shared_ptr<V> fallback) {
    return pop_any(key, std::move(fallback));
  }
  template <class Key>
  std::shared_ptr<V> pop(const Key& key, std::shared_ptr<V> fallback) requires other_key<Key> {
    return pop_any(key, std::move(fallback));
  }
  // Removes and returns the newest live entry. Throws std::out_of_range if empty.
  std::pair<K, std::shared_ptr<V>> popitem() {
    return pop_newest("weakref::weak_value_map::popitem: empty map",
                      [](std::shared_ptr<V> value, fields& f) {
                        return std::pair<K, std::shared_ptr<V>>(std::move(f.key), std::move(value));
                      });
  }

  void swap(weak_value_map& other) noexcept(
      std::is_nothrow_swappable_v<Hash>&& std::is_nothrow_swappable_v<KeyEqual>) {
    functors_or_empty(other, [&] {  // the functors first, then the tables, which cannot throw
      using std::swap;
      swap(hash_, other.hash_);
      swap(equal_, other.equal_);
    });
    table_.swap(other.table_);
  }

  // Python: update(other): insert_or_assign every (key, value) of `items`.
  template <class Range>
  void update(const Range& items) {
    graveyard g;
    this->for_each_while_alive(items, [&](const auto& item) {
      const auto& [key, value] = item;
      place(g, key, value, true);
    });
  }
  void update(std::initializer_list<std::pair<K, std::shared_ptr<V>>> items) {
    update<std::initializer_list<std::pair<K, std::shared_ptr<V>>>>(items);
  }
  weak_value_map copy() const { return *this; }

  // Python: valuerefs(): a ref to each live value, sharing the map's own weak references.
  std::vector<ref<V>> valuerefs() const { return this->template element_refs<V>(); }
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

  // Non-const: after applying the posted deaths (as size() does), so CPython-exact; empty if
  // a destructor run meanwhile destroyed the map.
  std::vector<ref<V>> valuerefs() {
    if (!this->tidy()) return {};
    return std::as_const(*this).valuerefs();
  }
  std::vector<K> keys() {
    if (!this->tidy()) return {};
    return std::as_const(*this).keys();
  }
  std::vector<std::shared_ptr<V>> values() {
    if (!this->tidy()) return {};
    return std::as_const(*this).values();
  }
  std::vector<std::pair<K, std::shared_ptr<V>>> items() {
    if (!this->tidy()) return {};
    return std::as_const(*this).items();
  }

  // erase_if(c, pred), found by argument-dependent lookup as std::erase_if is for std
  // containers: removes each live entry for which pred(item) holds, item a (const K&,
  // std::shared_ptr<V>) pair; returns how many.
  template <class Pred>
  friend size_type erase_if(weak_value_map& c, Pred pred) {
    return c.erase_where(pred);
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
  // The entry for `key`, or null. Reading only: it may be dead (its value is then null).
  template <class Key>
  node* lookup(const Key& key) const {
    return lookup(detail::mix_hash(hash_(key)), key);
  }
  template <class Key>
  node* lookup(std::uint64_t hash, const Key& key) const {
    return table_.find(hash, same_key(key));
  }
  // For the table's find: whether an entry's key equals `key`.
  template <class Key>
  auto same_key(const Key& key) const {
    return [this, &key](const fields& f) { return equal_(f.key, key); };
  }

  template <class Key>
  std::shared_ptr<V> get_any(const Key& key) const {
    auto* n = lookup(key);
    return n ? lock(*n) : nullptr;
  }
  template <class Key>
  std::shared_ptr<V> get_any(const Key& key, std::shared_ptr<V> fallback) const {
    auto value = get_any(key);
    return value ? value : fallback;
  }
  template <class Key>
  std::shared_ptr<V> at_any(const Key& key) const {
    if (auto value = get_any(key)) return value;
    throw std::out_of_range("weakref::weak_value_map::at: no such key");
  }
  template <class Key>
  size_type erase_any(const Key& key) {
    auto hash = detail::mix_hash(hash_(key));  // user code first: if it throws, nothing changed
    return erase_found([&] { return lookup(hash, key); });
  }
  template <class Key>
  std::shared_ptr<V> pop_any(const Key& key) {
    if (auto value = pop_any(key, nullptr)) return value;
    throw std::out_of_range("weakref::weak_value_map::pop: no such key");
  }
  template <class Key>
  std::shared_ptr<V> pop_any(const Key& key, std::shared_ptr<V> fallback) {
    auto hash = detail::mix_hash(hash_(key));
    graveyard g;
    table_.settle(g);
    auto* n = lookup(hash, key);
    if (!n) return fallback;
    auto value = lock(*n);
    table_.erase(n, g);
    return value ? value : fallback;
  }

  // Puts `value` under `key`: appends if absent; if present, replaces the value when `assign`
  // or when the old one is dead (its entry is as good as gone). Returns (entry, added).
  template <class Key>
  std::pair<node*, bool> place(graveyard& g, Key&& key, const std::shared_ptr<V>& value,
                               bool assign) {
    auto& header = detail::header_of(value, "weakref::weak_value_map");
    auto hash = detail::mix_hash(hash_(key));  // user code first: if it throws, nothing changed
    auto [n, added] = find_or_append(g, header, value, hash, same_key(key), std::forward<Key>(key));
    if (!added && (assign || !n->alive())) return {table_.renode(n, header, value, g), !assign};
    return {n, added};
  }

  // Runs `f`, the functors' part of a move assignment or swap; if it throws, empties both maps
  // (no entry may stay filed under a hash that changed). Not noexcept itself: its callers are
  // noexcept only when `f` cannot throw.
  template <class F>
  void functors_or_empty(weak_value_map& other, F f) {
    try {
      f();
    } catch (...) {
      clear();
      other.clear();
      throw;
    }
  }

  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] KeyEqual equal_;
};

}  // namespace weakref
