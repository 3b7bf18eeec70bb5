// weakref/weak_set.hpp — weakref::weak_set<T>: a set of objects held weakly, by identity, in
// insertion order; an object leaves it when it dies. Python: weakref.WeakSet.
//
// Example (an event bus whose listeners unsubscribe by dying):
//   weakref::weak_set<Listener> listeners;
//   auto a = weakref::make_shared<Listener>("a");
//   listeners.insert(a);
//   for (const auto& listener : listeners) listener->notify();  // strong refs: safe in the body
//   a.reset();                                                   // listeners.size() == 0
//
// Lifetime and thread-safety: like a std container, its const members may run on several
// threads at once (they only read), and any other use needs the container to itself; but its
// objects may die on any thread at any time, also while it is being iterated or changed. A
// death only posts a notice (lock-free); the entry leaves at the next non-const operation
// (size(), begin(), keys() and the like included, which also apply the deaths that destroying
// dead entries causes, so they are exact as CPython's). Const members skip dead entries. Entries
// removed while an iterator exists keep their fields until the first non-const operation after
// the last iterator is gone (CPython's pending removals): a kept iterator delays them.
// User code run by an operation (a destructor of a value, a key or an element) runs after the
// operation's last use of the container, so it may destroy or change the container. A weak_set
// runs no other user code: no hash, equality or constructor of T.
// Iteration yields std::shared_ptr<T> and never a dead object.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "weakref/detail/table_container.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"

namespace weakref {

namespace detail {
template <class T>
struct set_fields {
  using element_type = T;
  explicit set_fields(std::in_place_t) noexcept {}
};
template <class T>
struct set_traits {
  using value_type = std::shared_ptr<T>;
  static value_type value(const table_node<set_fields<T>>&, std::shared_ptr<T> element) noexcept {
    return element;
  }
};
}  // namespace detail

// weakref::weak_set<T>
//
// Members are compared by object identity (the owner), never by value or raw pointer.
// Iteration follows insertion order; pop() removes the newest member. Inserting a pointer not
// made by weakref::make_shared throws type_error; looking one up finds nothing.
template <class T>
class weak_set : detail::table_container<detail::set_fields<T>, detail::set_traits<T>> {
  using base = detail::table_container<detail::set_fields<T>, detail::set_traits<T>>;
  using base::erase_found, base::inserted, base::iterator_at, base::place_object, base::pop_newest,
      base::table_;
  using typename base::graveyard, typename base::node;

 public:
  using value_type = std::shared_ptr<T>;
  using typename base::iterator;
  using typename base::size_type;
  using const_iterator = iterator;
  // Iteration: std::shared_ptr<T> to each live member, in insertion order.
  using base::begin, base::end, base::size, base::empty, base::clear, base::erase;
  using base::weakref_gc_traverse_;  // for weakref::gc::visitor

  weak_set() = default;
  weak_set(std::initializer_list<std::shared_ptr<T>> members) { update(members); }
  template <class InputIt>
  weak_set(InputIt first, InputIt last) {
    for (; first != last; ++first) insert(*first);
  }
  // Copies hold the same objects weakly (Python: copy()).
  weak_set(const weak_set& other) { update(other); }
  weak_set(weak_set&&) noexcept = default;
  weak_set& operator=(const weak_set& other) {
    if (this != &other) weak_set(other).swap(*this);
    return *this;
  }
  weak_set& operator=(weak_set&&) noexcept = default;

  bool contains(const std::shared_ptr<T>& obj) const noexcept { return lookup(obj) != nullptr; }
  size_type count(const std::shared_ptr<T>& obj) const noexcept { return contains(obj); }
  iterator find(const std::shared_ptr<T>& obj) const { return iterator_at(lookup(obj)); }

  // Adds `obj` unless present; returns its position and whether it was added.
  // Throws type_error if `obj` is empty or not weakrefable.
  std::pair<iterator, bool> insert(const std::shared_ptr<T>& obj) {
    graveyard g;
    return inserted(place_object(g, obj, "weakref::weak_set"));
  }
  // Python: add. insert() without the iterator.
  void add(const std::shared_ptr<T>& obj) {
    graveyard g;
    place_object(g, obj, "weakref::weak_set");
  }

  // Removes `obj` if present; returns the number removed (0 or 1).
  size_type erase(const std::shared_ptr<T>& obj) noexcept {
    return erase_found([&] { return lookup(obj); });
  }
  // Python: discard (no error if absent) and remove (std::out_of_range if absent: KeyError).
  void discard(const std::shared_ptr<T>& obj) noexcept { erase(obj); }
  void remove(const std::shared_ptr<T>& obj) {
    if (!erase(obj)) throw std::out_of_range("weakref::weak_set::remove: not a member");
  }

  // Removes and returns the newest member. Throws std::out_of_range if empty (Python: KeyError).
  std::shared_ptr<T> pop() {
    return pop_newest("weakref::weak_set::pop: empty set",
                      [](std::shared_ptr<T> obj, const auto&) { return obj; });
  }

  void swap(weak_set& other) noexcept { table_.swap(other.table_); }

  // Adds every member of `range` (another weak_set, a container of shared_ptrs, ...).
  template <class Range>
  void update(const Range& range) {
    this->for_each_while_alive(range, [&](const auto& obj) { add(obj); });
  }
  void update(std::initializer_list<std::shared_ptr<T>> members) {
    for (const auto& obj : members) add(obj);
  }
  weak_set copy() const { return *this; }

  // Set algebra (Python: |, &, -, ^ and their assignment forms). Results keep this set's order,
  // then the other's.
  // Letting go of a member held may run its destructor (if another thread dropped its other
  // owners meanwhile), which may destroy or change either set. |=, -= and ^= read the other set
  // only by iterating it, which stops if it goes, and they stop if this one goes. The others
  // read one set while passing another's members, so they hold none (&=, issubset, isdisjoint,
  // ==) or keep what they hold until they return (|, &, -, ^).
  weak_set& operator|=(const weak_set& other) {
    update(other);
    return *this;
  }
  weak_set& operator&=(const weak_set& other) {  // in place: iterators over *this stay valid
    graveyard g;
    table_.settle(g);
    std::size_t kept = 0;  // entries left before position i
    for (std::size_t i = 0; i < table_.end_index();) {
      auto* n = table_.at(i);
      if (!n || other.holds_object_of(*n)) {
        kept += n != nullptr;
        ++i;
        continue;
      }
      const auto end = table_.end_index();
      table_.erase(n, g);
      // Unless an iterator exists, erasing may compact the order: the kept entries then come
      // first.
      i = table_.end_index() == end ? i + 1 : kept;
    }
    return *this;
  }
  weak_set& operator-=(const weak_set& other) {
    this->for_each_while_alive(other, [&](const auto& obj) { erase(obj); });
    return *this;
  }
  weak_set& operator^=(const weak_set& other) {
    if (this == &other) {
      clear();
      return *this;
    }
    this->for_each_while_alive(other, [&](const auto& obj) {
      if (!erase(obj)) add(obj);
    });
    return *this;
  }
  friend weak_set operator|(const weak_set& a, const weak_set& b) {
    held_members held;
    weak_set result;
    add_each(result, a, held, [](const node&) { return true; });
    add_each(result, b, held, [](const node&) { return true; });
    return result;
  }
  friend weak_set operator&(const weak_set& a, const weak_set& b) {
    held_members held;
    weak_set result;
    add_each(result, a, held, [&](const node& n) { return b.holds_object_of(n); });
    return result;
  }
  friend weak_set operator-(const weak_set& a, const weak_set& b) {
    held_members held;
    weak_set result;
    add_each(result, a, held, [&](const node& n) { return !b.holds_object_of(n); });
    return result;
  }
  friend weak_set operator^(const weak_set& a, const weak_set& b) {
    held_members held;
    weak_set result;
    add_each(result, a, held, [&](const node& n) { return !b.holds_object_of(n); });
    add_each(result, b, held, [&](const node& n) { return !a.holds_object_of(n); });
    return result;
  }

  bool issubset(const weak_set& other) const noexcept {
    return all_live([&](const node& n) { return other.holds_object_of(n); });
  }
  bool issuperset(const weak_set& other) const noexcept { return other.issubset(*this); }
  bool isdisjoint(const weak_set& other) const noexcept {
    return all_live([&](const node& n) { return !other.holds_object_of(n); });
  }
  // erase_if(c, pred), found by argument-dependent lookup as std::erase_if is for std
  // containers: removes each live member for which pred(obj) holds, obj a std::shared_ptr<T>;
  // returns how many.
  template <class Pred>
  friend size_type erase_if(weak_set& c, Pred pred) {
    return c.erase_where(pred);
  }

  // Same live members (order does not matter).
  friend bool operator==(const weak_set& a, const weak_set& b) noexcept {
    return a.size() == b.size() && a.issubset(b);
  }

 private:
  node* lookup(const std::shared_ptr<T>& obj) const noexcept {
    return detail::find_object(table_, obj);
  }

  // Whether this set has an entry on the object of `n`, an entry of any weak_set<T>. Reads
  // entries only, never locking an element (see the set algebra).
  bool holds_object_of(const node& n) const noexcept {
    return table_.find(detail::identity_hash(n.owner_id()), detail::same_object) != nullptr;
  }

  // Whether pred(n) holds for each live entry n.
  template <class Pred>
  bool all_live(Pred pred) const noexcept {
    for (std::size_t i = 0; i < table_.end_index(); ++i) {
      auto* n = table_.at(i);
      if (n && n->alive() && !pred(*n)) return false;
    }
    return true;
  }

  // The members a binary operator added to its result, held until it returns: declared first,
  // so that letting go of them comes after its last use of the operands.
  using held_members = std::vector<std::shared_ptr<T>>;

  // Adds to `to` each live member of `from` whose entry n satisfies keep(n), in order.
  template <class Keep>
  static void add_each(weak_set& to, const weak_set& from, held_members& held, Keep keep) {
    for (std::size_t i = 0; i < from.table_.end_index(); ++i) {
      auto* n = from.table_.at(i);
      if (!n || !keep(*n)) continue;
      if (auto obj = n->lock_element()) {
        held.push_back(std::move(obj));
        to.add(held.back());
      }
    }
  }
};

}  // namespace weakref
