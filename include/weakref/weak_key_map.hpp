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
// Lifetime and thread-safety: like a std container, its const members may run on several
// threads at once (they only read), and any other use needs the container to itself; but its
// key objects may die on any thread at any time, also while it is being iterated or changed. A
// death only posts a notice (lock-free); the entry (and its value) leaves at the next non-const
// operation (size(), begin(), keys() and the like included, which also apply the deaths that
// destroying dead entries causes, so they are exact as CPython's). Const members skip dead entries.
// Entries removed while an iterator exists keep their fields until the first non-const operation
// after the last iterator is gone (CPython's pending removals): a kept iterator delays them. User
// code run by an operation (a destructor of a value, a key or an element) runs after the
// operation's last use of the container, so it may destroy or change the container. So may the
// move of a value out of pop() and popitem(); constructing a value for an entry may change the
// map, not destroy it; assigning one in place may do neither (see the reference, "User code
// during an operation").
// Iteration yields strong references to the keys and never a dead key.
// Ephemerons: when V can hold a std::shared_ptr that weakref::gc::visitor sees (V is a
// shared_ptr, has traverse, or is a std container / optional / pair / tuple / variant of
// those), each entry is an ephemeron for weakref::gc::collect(): its value keeps things alive
// only while its key is reachable from outside the value (and the map itself is alive). So a
// value that refers back to its key (meta[w] = Info{w}) no longer keeps it alive forever:
// collect() frees the key, and the entry leaves. CPython's WeakKeyDictionary leaks it
// (gh-88846). Such a map costs a lock at construction and destruction (the one collections and
// queries hold while traverses run: do not make or destroy such a map while holding a lock a
// traverse takes), and collect() reads its entries: do not change it on one thread while
// another runs collect() (as for any read).
// Without a collection, or with values the visitor cannot see into, a value that owns its key
// keeps the key alive until the entry is erased.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "weakref/detail/gc_ephemeron.hpp"
#include "weakref/detail/gc_visitor.hpp"
#include "weakref/detail/table_container.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"

namespace weakref {

namespace detail {
template <class K, class V>
struct key_map_fields {
  using element_type = K;
  template <class... A>
  explicit key_map_fields(std::in_place_t, A&&... v) : value(std::forward<A>(v)...) {}
  V value;
};
template <class K, class V>
struct key_map_traits {
  using value_type = std::pair<std::shared_ptr<K>, V&>;
  static value_type value(table_node<key_map_fields<K, V>>& n,
                          std::shared_ptr<K> element) noexcept {
    return value_type(std::move(element), n.fields().value);
  }
};

// What makes a weak_key_map a table of ephemerons for the collector (see the NOTE above).
template <class Map>
class gc_ephemeron_map : public gc_ephemeron_table {
  std::size_t gc_entry_count() const noexcept final { return map().table_.end_index(); }
  weakref_node* gc_entry_key(std::size_t i) const noexcept final { return map().table_.at(i); }
  void gc_visit_value(std::size_t i, gc::visitor& visit) final {
    if (auto* n = map().table_.at(i)) visit(n->fields().value);
  }
  const std::type_info& gc_map_type() const noexcept final { return typeid(Map); }
  Map& map() const noexcept { return const_cast<Map&>(static_cast<const Map&>(*this)); }
};
struct gc_plain_map {};
}  // namespace detail

// weakref::weak_key_map<K, V>
//
// Keys are std::shared_ptr<K> compared by object identity (the owner). Iteration follows
// insertion order; assigning to an existing key keeps its place; popitem() removes the newest.
// Inserting a key not made by weakref::make_shared throws type_error; looking one up finds
// nothing. Absent keys: get() gives an empty optional; at(), pop() and popitem() on an empty
// map throw std::out_of_range (Python: KeyError).
template <class K, class V>
class weak_key_map
    : detail::table_container<detail::key_map_fields<K, V>, detail::key_map_traits<K, V>>,
      std::conditional_t<detail::gc_holds_edges<V>(), detail::gc_ephemeron_map<weak_key_map<K, V>>,
                         detail::gc_plain_map> {
  using base = detail::table_container<detail::key_map_fields<K, V>, detail::key_map_traits<K, V>>;
  friend class detail::gc_ephemeron_map<weak_key_map>;
  using base::collect_each, base::erase_found, base::inserted, base::iterator_at,
      base::place_object, base::pop_newest, base::table_;
  using typename base::graveyard, typename base::node;

 public:
  using key_type = std::shared_ptr<K>;
  using mapped_type = V;
  using value_type = std::pair<std::shared_ptr<K>, V&>;
  using typename base::iterator;
  using typename base::size_type;
  // Iteration: (std::shared_ptr<K>, V&) for each live key, in insertion order.
  using base::begin, base::end, base::size, base::empty, base::clear, base::erase;
  using base::weakref_gc_traverse_;  // for weakref::gc::visitor
  detail::gc_ephemeron_table& weakref_gc_ephemerons_() noexcept
      requires(detail::gc_holds_edges<V>()) {
    return *this;
  }

  weak_key_map() = default;
  weak_key_map(std::initializer_list<std::pair<std::shared_ptr<K>, V>> items) { update(items); }
  // Copies hold the same keys weakly, with copies of the values (Python: copy()).
  weak_key_map(const weak_key_map& other) { update(other); }
  weak_key_map(weak_key_map&& other) noexcept : base(std::move(other)) {}
  weak_key_map& operator=(const weak_key_map& other) {
    if (this != &other) weak_key_map(other).swap(*this);
    return *this;
  }
  weak_key_map& operator=(weak_key_map&&) noexcept = default;

  bool contains(const key_type& key) const noexcept { return lookup(key) != nullptr; }
  size_type count(const key_type& key) const noexcept { return contains(key); }
  iterator find(const key_type& key) const { return iterator_at(lookup(key)); }

  // The value for `key`, inserting V() first if absent (std::unordered_map's operator[]).
  // References to values stay valid until their entry is removed, as std::unordered_map's do.
  V& operator[](const key_type& key) {
    graveyard g;
    return place_object(g, key, facility).first->fields().value;
  }

  V& at(const key_type& key) { return checked(key, "at").fields().value; }
  const V& at(const key_type& key) const { return checked(key, "at").fields().value; }

  // Python: get(key) / get(key, default).
  std::optional<V> get(const key_type& key) const {
    auto* n = lookup(key);
    return n ? std::optional<V>(n->fields().value) : std::nullopt;
  }
  V get(const key_type& key, V fallback) const {
    auto* n = lookup(key);
    return n ? n->fields().value : std::move(fallback);
  }

  std::pair<iterator, bool> insert(const std::pair<key_type, V>& item) {
    return try_emplace(item.first, item.second);
  }
  template <class... A>
  std::pair<iterator, bool> try_emplace(const key_type& key, A&&... args) {
    graveyard g;
    return inserted(place_object(g, key, facility, std::forward<A>(args)...));
  }
  // Python: d[key] = value. An existing key keeps its place.
  template <class M>
  std::pair<iterator, bool> insert_or_assign(const key_type& key, M&& value) {
    graveyard g;
    std::optional<V> replaced;  // destroyed after the iterator is made: user code
    return inserted(assign(g, key, std::forward<M>(value), replaced));
  }

  // Python: setdefault(key, default): the value for `key`, inserting `fallback` if absent.
  V& setdefault(const key_type& key, V fallback = V()) {
    graveyard g;
    return place_object(g, key, facility, std::move(fallback)).first->fields().value;
  }

  size_type erase(const key_type& key) noexcept {
    return erase_found([&] { return lookup(key); });
  }

  // Python: pop(key) (std::out_of_range if absent) and pop(key, default).
  V pop(const key_type& key) {
    graveyard g;
    table_.settle(g);
    return take(checked(key, "pop"), g);
  }
  V pop(const key_type& key, V fallback) {
    graveyard g;
    table_.settle(g);
    auto* n = lookup(key);
    return n ? take(*n, g) : std::move(fallback);
  }
  // Removes and returns the newest entry. Throws std::out_of_range if empty.
  std::pair<key_type, V> popitem() {
    return pop_newest("weakref::weak_key_map::popitem: empty map", [](key_type key, auto& f) {
      return std::pair<key_type, V>(std::move(key), std::move(f.value));
    });
  }

  void swap(weak_key_map& other) noexcept { table_.swap(other.table_); }

  // Python: update(other): insert_or_assign every (key, value) of `items`.
  template <class Range>
  void update(const Range& items) {
    graveyard g;
    this->for_each_while_alive(items, [&](const auto& item) {
      const auto& [key, value] = item;
      std::optional<V> replaced;  // destroyed before the next item: user code
      assign(g, key, value, replaced);
    });
  }
  void update(std::initializer_list<std::pair<key_type, V>> items) {
    update<std::initializer_list<std::pair<key_type, V>>>(items);
  }
  weak_key_map copy() const { return *this; }

  // Python: keyrefs(): a ref to each live key, sharing the map's own weak references.
  std::vector<ref<K>> keyrefs() const { return this->template element_refs<K>(); }
  std::vector<key_type> keys() const {
    return collect_each([](auto& kv) { return kv.first; });
  }
  std::vector<V> values() const {
    return collect_each([](auto& kv) { return kv.second; });
  }
  std::vector<std::pair<key_type, V>> items() const {
    return collect_each([](auto& kv) { return std::pair<key_type, V>(kv.first, kv.second); });
  }

  // Non-const: after applying the posted deaths (as size() does), so CPython-exact; empty if
  // a destructor run meanwhile destroyed the map.
  std::vector<ref<K>> keyrefs() {
    if (!this->tidy()) return {};
    return std::as_const(*this).keyrefs();
  }
  std::vector<key_type> keys() {
    if (!this->tidy()) return {};
    return std::as_const(*this).keys();
  }
  std::vector<V> values() {
    if (!this->tidy()) return {};
    return std::as_const(*this).values();
  }
  std::vector<std::pair<key_type, V>> items() {
    if (!this->tidy()) return {};
    return std::as_const(*this).items();
  }

  // erase_if(c, pred), found by argument-dependent lookup as std::erase_if is for std
  // containers: removes each live entry for which pred(item) holds, item a (std::shared_ptr<K>, V&)
  // pair; returns how many.
  template <class Pred>
  friend size_type erase_if(weak_key_map& c, Pred pred) {
    return c.erase_where(pred);
  }

  // Same live keys (by identity) with equal values, in any order.
  friend bool operator==(const weak_key_map& a, const weak_key_map& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [key, value] : a) {
      auto* n = b.lookup(key);
      if (!n || !(n->fields().value == value)) return false;
    }
    return true;
  }

 private:
  using registration =
      std::conditional_t<detail::gc_holds_edges<V>(), detail::gc_ephemeron_registration,
                         detail::gc_no_registration>;

  static constexpr const char* facility = "weakref::weak_key_map";

  node* lookup(const key_type& key) const noexcept { return detail::find_object(table_, key); }
  node& checked(const key_type& key, const char* what) const {
    if (auto* n = lookup(key)) return *n;
    throw std::out_of_range(std::string("weakref::weak_key_map::") + what + ": no such key");
  }
  // insert_or_assign without the iterator. A present key's old value is moved to `replaced`,
  // which the caller destroys after its last use of the map: its destructor is user code,
  // which may destroy the map. (A V without a non-throwing move is assigned in place.)
  template <class M>
  std::pair<node*, bool> assign(graveyard& g, const key_type& key, M&& value,
                                std::optional<V>& replaced) {
    auto placed = place_object(g, key, facility, std::forward<M>(value));
    if (placed.second) return placed;
    if constexpr (std::is_constructible_v<V, M&&> && std::is_nothrow_move_constructible_v<V> &&
                  std::is_nothrow_move_assignable_v<V>) {
      const auto version = table_.version();
      V fresh(std::forward<M>(value));  // first: `value` may be the slot itself; may throw
      // Its constructor is user code: if it changed the map, the entry may be gone.
      if (table_.version() != version) [[unlikely]] {
        placed = place_object(g, key, facility, std::move(fresh));
        if (placed.second) return placed;
      }
      auto& slot = placed.first->fields().value;
      replaced.emplace(std::move(slot));
      slot = std::move(fresh);
    } else {
      placed.first->fields().value = std::forward<M>(value);  // must not change the map
    }
    return placed;
  }

  // Out of the table first: moving the value out is user code, which may change or destroy
  // the map. The moved-from value stays in `g` until the caller returns. A V whose moves may
  // throw is moved first instead, so that a throw leaves the entry (strong guarantee).
  V take(node& n, graveyard& g) {
    if constexpr (std::is_nothrow_move_constructible_v<V>) {
      table_.erase(&n, g);
      return std::move(n.fields().value);
    } else {
      V value = std::move(n.fields().value);
      table_.erase(&n, g);
      return value;
    }
  }

  // Last: see gc_ephemeron_registration.
  [[no_unique_address]] registration registration_{this};
};

}  // namespace weakref
