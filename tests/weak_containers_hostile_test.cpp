// User code that runs inside an operation of weak_value_map, weak_key_map or weak_set and
// destroys or reshapes the very container: a destructor run when an iterator lets go of an
// element, when a dead entry's fields are destroyed, or when entries removed under an iterator
// are let go. Each once was a use-after-free (under ASan); the rule now (weak_table.hpp): user
// code runs after the operation's last use of the table. Also: reading members change nothing,
// so several threads may read one const container (under TSan).
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_set.hpp"
#include "weakref/weak_value_map.hpp"

namespace {

// An object whose destructor runs `on_death` (once).
struct bomb {
  std::function<void()> on_death;
  ~bomb() {
    if (on_death) std::exchange(on_death, nullptr)();
  }
};
using bomb_ptr = std::shared_ptr<bomb>;

// A key or value type whose destructor runs `on_destroy` (when not moved from).
struct fuse {
  fuse() = default;
  explicit fuse(std::function<void()> f) : on_destroy(std::move(f)) {}
  fuse(const fuse& other) = default;
  fuse(fuse&& other) noexcept : on_destroy(std::exchange(other.on_destroy, nullptr)) {}
  fuse& operator=(const fuse&) = default;
  fuse& operator=(fuse&& other) noexcept {
    on_destroy = std::exchange(other.on_destroy, nullptr);
    return *this;
  }
  ~fuse() {
    if (on_destroy) std::exchange(on_destroy, nullptr)();
  }
  bool operator==(const fuse&) const { return true; }  // one key only
  std::function<void()> on_destroy;
};
struct fuse_hash {
  std::size_t operator()(const fuse&) const { return 7; }
};

using value_map = weakref::weak_value_map<int, bomb>;
using key_map = weakref::weak_key_map<bomb, int>;
using set = weakref::weak_set<bomb>;

bomb_ptr make_bomb() { return weakref::make_shared<bomb>(); }

// Inserts `obj` as the container's newest element.
void put(value_map& c, int key, const bomb_ptr& obj) { c.insert_or_assign(key, obj); }
void put(key_map& c, int key, const bomb_ptr& obj) { c[obj] = key; }
void put(set& c, int, const bomb_ptr& obj) { c.add(obj); }

template <class C>
class hostile : public testing::Test {};
using containers = testing::Types<value_map, key_map, set>;
TYPED_TEST_SUITE(hostile, containers);

// Shape 1: ++it lets go of the element in hand; its death destroys the container.
TYPED_TEST(hostile, advancing_an_iterator_whose_release_destroys_the_container) {
  auto container = std::make_unique<std::optional<TypeParam>>(std::in_place);
  auto first = make_bomb();
  auto second = make_bomb();
  put(**container, 1, first);
  put(**container, 2, second);
  first->on_death = [&] { container->reset(); };
  auto it = (*container)->begin();
  first.reset();  // the iterator holds the only reference now
  ++it;           // lets go of it: the container is destroyed under the iterator
  EXPECT_FALSE(container->has_value());
  EXPECT_TRUE(it == typename TypeParam::iterator());  // stopped
}

// Shape 1': the release move-assigns another container over this one.
TYPED_TEST(hostile, advancing_an_iterator_whose_release_replaces_the_container) {
  TypeParam container;
  auto first = make_bomb();
  auto second = make_bomb();
  put(container, 1, first);
  put(container, 2, second);
  first->on_death = [&] { container = TypeParam(); };
  auto it = container.begin();
  first.reset();
  ++it;
  EXPECT_EQ(container.size(), 0u);
  std::size_t seen = 0;
  for (; it != container.end(); ++it) ++seen;  // it ended, or follows the old contents
  EXPECT_LE(seen, 1u);
}

// erase_if's predicate is user code: it may destroy the container (erase_if stops), erase
// what comes next, or insert (the iteration goes on as any loop's would).
TYPED_TEST(hostile, erase_if_whose_predicate_destroys_the_container) {
  auto container = std::make_unique<std::optional<TypeParam>>(std::in_place);
  auto first = make_bomb(), second = make_bomb();
  put(**container, 1, first);
  put(**container, 2, second);
  std::size_t calls = 0;
  auto removed = erase_if(**container, [&](const auto&) {
    ++calls;
    container->reset();
    return true;
  });
  EXPECT_EQ(removed, 0u);
  EXPECT_EQ(calls, 1u);
  EXPECT_FALSE(container->has_value());
}

TYPED_TEST(hostile, erase_if_whose_erasure_releases_the_last_owner_destroying_the_container) {
  auto container = std::make_unique<std::optional<TypeParam>>(std::in_place);
  auto first = make_bomb(), second = make_bomb();
  put(**container, 1, first);
  put(**container, 2, second);
  first->on_death = [&] { container->reset(); };
  std::size_t calls = 0;
  auto removed = erase_if(**container, [&](const auto&) {
    first.reset();  // the iteration holds the only reference now
    return ++calls == 1;
  });
  EXPECT_EQ(removed, 1u);
  EXPECT_EQ(calls, 1u);  // letting go of the erased element destroyed the container
  EXPECT_FALSE(container->has_value());
}

TYPED_TEST(hostile, erase_if_whose_predicate_assigns_another_container_over_it) {
  TypeParam container;
  auto a = make_bomb(), b = make_bomb(), c = make_bomb();
  put(container, 1, a);
  put(container, 2, b);
  std::size_t calls = 0;
  auto removed = erase_if(container, [&](const auto&) {
    if (++calls == 1) {
      TypeParam replacement;
      put(replacement, 3, c);
      container = std::move(replacement);  // detaches the iteration
    }
    return true;
  });
  EXPECT_EQ(removed, 0u);
  EXPECT_EQ(calls, 1u);
  EXPECT_EQ(container.size(), 1u);  // c, untouched
}

TYPED_TEST(hostile, erase_if_whose_predicate_changes_the_container) {
  TypeParam container;
  auto a = make_bomb(), b = make_bomb(), c = make_bomb(), d = make_bomb();
  put(container, 1, a);
  put(container, 2, b);
  put(container, 3, c);
  std::size_t calls = 0;
  auto removed = erase_if(container, [&](const auto&) {
    if (++calls == 1) {
      container.clear();  // everything, the element in hand included
      put(container, 4, d);
    }
    return true;
  });
  EXPECT_EQ(removed, 1u);  // d; the element in hand was already gone
  EXPECT_EQ(calls, 2u);
  EXPECT_TRUE(container.empty());

  put(container, 5, a);
  EXPECT_THROW(erase_if(container, [](const auto&) -> bool { throw std::runtime_error("no"); }),
               std::runtime_error);
  EXPECT_EQ(container.size(), 1u);
}

// Shape 3: entries removed while an iterator was alive are let go later; a destructor that
// iterates (and so makes and drops iterators) must not make any of them go twice.
TYPED_TEST(hostile, entries_removed_under_an_iterator_go_once_even_if_their_death_iterates) {
  TypeParam container;
  std::vector<bomb_ptr> objects;
  for (int i = 0; i < 20; ++i) {
    objects.push_back(make_bomb());
    put(container, i, objects.back());
  }
  int deaths = 0;
  for (auto& obj : objects) {
    obj->on_death = [&] {
      ++deaths;
      std::size_t n = 0;
      for (auto it = container.begin(); it != container.end(); ++it) ++n;  // iterates
      EXPECT_LE(n, 20u);
    };
  }
  {
    auto it = container.begin();
    for (std::size_t i = 1; i < objects.size(); ++i) objects[i].reset();  // removed under `it`
  }
  objects.clear();
  EXPECT_EQ(deaths, 20);
  EXPECT_EQ(container.size(), 0u);
  put(container, 99, make_bomb());  // a changing operation lets go of the removed entries
  EXPECT_EQ(container.size(), 0u);  // (and of the temporary)
}

// Shape 2: a changing operation applies a posted death; the dead entry's fields' destructor
// destroys the container. Only the maps have user fields.
TEST(hostile_fields, a_dead_value_whose_destructor_destroys_the_weak_key_map) {
  auto container =
      std::make_unique<std::optional<weakref::weak_key_map<bomb, fuse>>>(std::in_place);
  auto key = make_bomb();
  (**container)[key] = fuse([&] { container->reset(); });
  key.reset();  // posted: the entry and its fuse stay until the next changing operation
  EXPECT_EQ(std::as_const(**container).size(), 0u);  // reading: nothing destroyed
  ASSERT_TRUE(container->has_value());
  auto other = make_bomb();
  EXPECT_EQ((*container)->erase(other), 0u);  // applies the death; the fuse destroys the map last
  EXPECT_FALSE(container->has_value());
  // A non-const size() applies deaths too, and returns what it counted before the destructors.
  container = std::make_unique<std::optional<weakref::weak_key_map<bomb, fuse>>>(std::in_place);
  key = make_bomb();
  (**container)[key] = fuse([&] { container->reset(); });
  (**container)[other] = fuse();
  key.reset();
  EXPECT_EQ((*container)->size(), 0u);  // destroyed while it counted: the count is 0
  EXPECT_FALSE(container->has_value());
}

// The same, from an insertion: its iterator, made before the graveyard's destructors run and
// registered in the table's slot for fresh iterators, is detached when the fuse destroys the map.
TEST(hostile_fields, an_insertion_whose_dead_entrys_value_destroys_the_map_returns_a_detached_it) {
  // The fuse frees the map, not only destroys it, so that ASan sees a later use.
  auto container = std::make_unique<weakref::weak_key_map<bomb, fuse>>();
  auto key = make_bomb();
  (*container)[key] = fuse([&] { container.reset(); });
  key.reset();
  auto other = make_bomb();
  auto [it, added] = container->try_emplace(other, fuse());
  EXPECT_TRUE(added);
  EXPECT_EQ(container, nullptr);
  EXPECT_EQ(++it, decltype(it)());  // detached: stays at the end
}

TEST(hostile_fields, a_dead_key_whose_destructor_destroys_the_weak_value_map) {
  using map = weakref::weak_value_map<fuse, bomb, fuse_hash>;
  auto container = std::make_unique<std::optional<map>>(std::in_place);
  auto value = make_bomb();
  (*container)->insert_or_assign(fuse([&] { container->reset(); }), value);
  value.reset();
  EXPECT_EQ(std::as_const(**container).size(), 0u);
  ASSERT_TRUE(container->has_value());
  EXPECT_EQ((*container)->erase(fuse()), 0u);  // applies the death, then the key's destructor
  EXPECT_FALSE(container->has_value());
}

TEST(hostile_fields, a_dead_value_destroyed_by_clear_destroys_the_map) {
  auto container =
      std::make_unique<std::optional<weakref::weak_key_map<bomb, fuse>>>(std::in_place);
  std::vector<bomb_ptr> keys;
  int destroyed = 0;
  for (int i = 0; i < 5; ++i) {
    keys.push_back(make_bomb());
    (**container)[keys.back()] = fuse([&] {
      if (++destroyed == 1) container->reset();  // the first destructor destroys the map
    });
  }
  (*container)->clear();
  EXPECT_FALSE(container->has_value());
  EXPECT_EQ(destroyed, 5);  // every value destroyed exactly once
}

// Shape 3 with fields: values of entries removed under an iterator are destroyed later; a
// destructor that iterates the map (making and dropping iterators, which once compacted the
// order under the loop letting them go) must not make any value go twice.
TEST(hostile_fields, values_let_go_after_an_iterator_may_iterate_the_map) {
  weakref::weak_key_map<bomb, fuse> map;
  std::vector<bomb_ptr> keys;
  int destroyed = 0;
  for (int i = 0; i < 20; ++i) {
    keys.push_back(make_bomb());
    map[keys.back()] = fuse([&] {
      ++destroyed;
      std::size_t n = 0;
      for (auto it = map.begin(); it != map.end(); ++it) ++n;
      EXPECT_LE(n, 20u);
    });
  }
  {
    auto it = map.begin();
    for (std::size_t i = 1; i < keys.size(); ++i) keys[i].reset();
    EXPECT_EQ(map.erase(keys[0]), 1u);  // changing, under the iterator: all 20 marked removed
  }
  EXPECT_EQ(map.erase(make_bomb()), 0u);  // the first changing operation after it lets them go
  EXPECT_EQ(destroyed, 20);
  EXPECT_EQ(map.size(), 0u);
}

// popitem() passes the newest entry when its object died after the posted deaths were
// applied: here it is called from a callback of the dying key (a newer weak reference, so it
// runs before the map's entry posts). The dead entry's value is destroyed only after
// popitem's last use of the map, though it destroys the map (owned by a unique_ptr, so
// ASan sees a later use).
TEST(hostile_fields, popitem_passing_a_dead_key_whose_value_destroys_the_weak_key_map) {
  using map = weakref::weak_key_map<bomb, fuse>;
  auto container = std::make_unique<map>();
  auto older = make_bomb();
  auto newest = make_bomb();
  (*container)[older] = fuse();
  (*container)[newest] = fuse([&] { container.reset(); });
  std::optional<std::pair<bomb_ptr, fuse>> popped;
  weakref::ref<bomb> watch(newest, [&] { popped = container->popitem(); });
  newest.reset();  // the callback pops: past the dead entry, to the older one
  ASSERT_TRUE(popped.has_value());
  EXPECT_EQ(popped->first, older);
  EXPECT_EQ(container, nullptr);
}

TEST(hostile_fields, popitem_passing_a_dead_value_whose_key_destroys_the_weak_value_map) {
  using map = weakref::weak_value_map<fuse, bomb, fuse_hash>;
  auto container = std::make_unique<map>();
  auto value = make_bomb();
  container->insert_or_assign(fuse([&] { container.reset(); }), value);
  bool empty = false;
  weakref::ref<bomb> watch(value, [&] {
    try {
      container->popitem();
    } catch (const std::out_of_range&) {
      empty = true;  // its only entry was dead
    }
  });
  value.reset();
  EXPECT_TRUE(empty);
  EXPECT_EQ(container, nullptr);
}

// Assigning to a present key replaces its value; the old value's destructor (here the last
// reference to an object whose death destroys or replaces the map) runs after the operation's
// last use of the map. It ran inside the assignment, before insert_or_assign made its iterator
// from the entry (and before update() went on to its next item): a heap-use-after-free.
using replaced_value_map = weakref::weak_key_map<bomb, bomb_ptr>;

TEST(hostile_fields, a_value_replaced_by_insert_or_assign_destroys_the_weak_key_map) {
  auto container = std::make_unique<replaced_value_map>();
  auto key = make_bomb();
  auto old_value = make_bomb();
  old_value->on_death = [&] { container.reset(); };
  container->insert_or_assign(key, std::exchange(old_value, nullptr));
  auto [it, added] = container->insert_or_assign(key, make_bomb());
  EXPECT_FALSE(added);
  EXPECT_EQ(container, nullptr);
  EXPECT_TRUE(it == replaced_value_map::iterator());  // detached with the map
}

TEST(hostile_fields, a_value_replaced_by_insert_or_assign_replaces_the_weak_key_map) {
  replaced_value_map container;
  auto key = make_bomb();
  auto old_value = make_bomb();
  old_value->on_death = [&] { container = replaced_value_map(); };
  container.insert_or_assign(key, std::exchange(old_value, nullptr));
  auto new_value = make_bomb();
  auto [it, added] = container.insert_or_assign(key, new_value);
  EXPECT_FALSE(added);
  EXPECT_EQ(container.size(), 0u);
  EXPECT_TRUE(it == container.end());  // it went with the old contents
}

TEST(hostile_fields, a_value_replaced_by_update_destroys_the_weak_key_map) {
  auto container = std::make_unique<replaced_value_map>();
  auto key = make_bomb();
  auto other = make_bomb();
  auto old_value = make_bomb();
  old_value->on_death = [&] { container.reset(); };
  container->insert_or_assign(key, std::exchange(old_value, nullptr));
  std::vector<std::pair<bomb_ptr, bomb_ptr>> items{{key, make_bomb()}, {other, make_bomb()}};
  container->update(items);  // the first item destroys the map: update stops there
  EXPECT_EQ(container, nullptr);
}

// update() from another map: the value an item replaces drops the last outside reference to
// that item's key, so the source's iterator lets go of the key's last reference when it moves
// on, and the key's death destroys the map being updated. update() stops there.
TEST(hostile_fields, a_key_the_source_lets_go_of_during_update_destroys_the_weak_key_map) {
  auto container = std::make_unique<replaced_value_map>();
  replaced_value_map source;
  auto first = make_bomb();
  auto second = make_bomb();
  auto old_value = make_bomb();
  old_value->on_death = [&] { first.reset(); };
  first->on_death = [&] { container.reset(); };
  container->insert_or_assign(first, std::exchange(old_value, nullptr));
  source.insert_or_assign(first, make_bomb());
  source.insert_or_assign(second, make_bomb());
  container->update(source);
  EXPECT_EQ(container, nullptr);
  EXPECT_EQ(source.size(), 1u);
}

// A range of `count` items that makes each when the loop asks for it and returns it by value
// (as a transforming view does): the loop's variable holds the item's only reference.
template <class Make>
struct made_items {
  int count;
  Make make;
  struct iterator {
    const made_items* range;
    int i;
    auto operator*() const { return range->make(i); }
    iterator& operator++() {
      ++i;
      return *this;
    }
    bool operator!=(const iterator& other) const { return i != other.i; }
  };
  iterator begin() const { return {this, 0}; }
  iterator end() const { return {this, count}; }
};

// update() from such a range: the item's last reference goes when the loop moves on, and the
// item's death destroys the container being updated. update() stops there.
TEST(hostile_fields, an_item_the_range_lets_go_of_during_update_destroys_the_weak_set) {
  auto container = std::make_unique<set>();
  auto make = [&](int) {
    auto obj = make_bomb();
    obj->on_death = [&] { container.reset(); };
    return obj;
  };
  container->update(made_items<decltype(make)>{3, make});
  EXPECT_EQ(container, nullptr);
}

TEST(hostile_fields, an_item_the_range_lets_go_of_during_update_destroys_the_weak_value_map) {
  auto container = std::make_unique<value_map>();
  auto make = [&](int key) {
    auto obj = make_bomb();
    obj->on_death = [&] { container.reset(); };
    return std::pair<int, bomb_ptr>(key, obj);
  };
  container->update(made_items<decltype(make)>{3, make});
  EXPECT_EQ(container, nullptr);
}

// update() keeps what it takes out of the map until its end, while user code between items
// may replace the map's contents by another map's, whose entries post to another inbox. An
// entry taken from the new contents that may still post (a ref from getweakrefs shares its
// node) needs that inbox when it is let go, after the map (and with it the inbox) was destroyed
// by a later item: the graveyard kept only the first inbox alive (AddressSanitizer:
// heap-use-after-free in entry_node::retire).
TEST(hostile_fields, update_keeps_the_inbox_of_contents_that_replaced_the_map_meanwhile) {
  auto container = std::make_unique<value_map>();
  auto first_value = make_bomb();
  container->insert_or_assign(0, first_value);  // replaced by item 0: its node stays for the end
  value_map other;
  auto doomed = make_bomb();
  other.insert_or_assign(5, doomed);
  auto shared = weakref::getweakrefs(doomed);  // shares other's entry node
  doomed.reset();                              // posted to other's inbox
  auto make = [&](int key) {
    auto obj = make_bomb();
    if (key == 0) obj->on_death = [&] { *container = std::move(other); };
    if (key == 2) obj->on_death = [&] { container.reset(); };
    return std::pair<int, bomb_ptr>(key, obj);
  };
  container->update(made_items<decltype(make)>{3, make});  // item 1 applies the posted death
  EXPECT_EQ(container, nullptr);
  EXPECT_EQ(shared.size(), 1u);
  EXPECT_EQ(shared[0].lock(), nullptr);
}

// The non-const keys(), values(), items() and keyrefs() apply the posted deaths first; when a
// dead entry's field destroys the map there, they return nothing and read no more.
template <class Map, class Arm, class Read>
void read_after_a_destroying_death(Arm arm, Read read) {
  auto container = std::make_unique<Map>();
  auto obj = make_bomb();
  arm(*container, obj, [&] { container.reset(); });
  obj.reset();  // posted
  ASSERT_NE(container, nullptr);
  EXPECT_TRUE(read(*container).empty());
  EXPECT_EQ(container, nullptr);
}

TEST(hostile_fields, weak_key_map_listings_after_a_death_that_destroys_the_map) {
  using map = weakref::weak_key_map<bomb, fuse>;
  auto arm = [](map& m, const bomb_ptr& key, std::function<void()> f) {
    m[key] = fuse(std::move(f));
  };
  read_after_a_destroying_death<map>(arm, [](map& m) { return m.keys(); });
  read_after_a_destroying_death<map>(arm, [](map& m) { return m.values(); });
  read_after_a_destroying_death<map>(arm, [](map& m) { return m.items(); });
  read_after_a_destroying_death<map>(arm, [](map& m) { return m.keyrefs(); });
}

TEST(hostile_fields, weak_value_map_listings_after_a_death_that_destroys_the_map) {
  using map = weakref::weak_value_map<fuse, bomb, fuse_hash>;
  auto arm = [](map& m, const bomb_ptr& value, std::function<void()> f) {
    m.insert_or_assign(fuse(std::move(f)), value);
  };
  read_after_a_destroying_death<map>(arm, [](map& m) { return m.keys(); });
  read_after_a_destroying_death<map>(arm, [](map& m) { return m.values(); });
  read_after_a_destroying_death<map>(arm, [](map& m) { return m.items(); });
  read_after_a_destroying_death<map>(arm, [](map& m) { return m.valuerefs(); });
}

// User constructors, moves and functors that run in the middle of an operation (the rule in
// weak_table.hpp). A `hooked` field runs a hook armed by the test, once, inside its next copy or
// move: as the key of a weak_value_map (then its Hash can run one too) or the value of a
// weak_key_map.
struct hooks {
  std::function<void()> copy, move, hash;
};
struct hooked {
  hooked() = default;
  hooked(int i, hooks* h) : id(i), on(h) {}
  // The members first, then the hook: it may destroy the source.
  hooked(const hooked& other) : id(other.id), on(other.on) { fire(&hooks::copy); }
  hooked(hooked&& other) noexcept : id(other.id), on(other.on) { fire(&hooks::move); }
  hooked& operator=(const hooked&) = default;
  hooked& operator=(hooked&&) noexcept = default;
  ~hooked() = default;
  bool operator==(const hooked& other) const { return id == other.id; }
  void fire(std::function<void()> hooks::*which) const {
    if (on && on->*which) std::exchange(on->*which, nullptr)();
  }
  int id = 0;
  hooks* on = nullptr;
};
struct hooked_hash {
  std::size_t operator()(const hooked& key) const {
    key.fire(&hooks::hash);
    return static_cast<std::size_t>(key.id);
  }
};

// The two maps, with the hooked field and the object of entry `id` as key and value in the
// order each takes them: one interface for the typed tests.
struct hooked_key {
  using map = weakref::weak_value_map<hooked, bomb, hooked_hash>;
  static std::pair<map::iterator, bool> insert(map& m, hooks& on, int id, const bomb_ptr& obj) {
    const hooked key(id, &on);
    return m.try_emplace(key, obj);  // copies the key into the new entry
  }
  static void erase(map& m, hooks& on, int id, const bomb_ptr&) { m.erase(hooked(id, &on)); }
  static int popitem(map& m) { return m.popitem().first.id; }
  static bomb_ptr object(const map::iterator& it) { return it->second; }
  static std::vector<int> ids(const map& m) {
    std::vector<int> ids;
    for (const auto& [key, value] : m) ids.push_back(key.id);
    return ids;
  }
};
struct hooked_value {
  using map = weakref::weak_key_map<bomb, hooked>;
  static std::pair<map::iterator, bool> insert(map& m, hooks& on, int id, const bomb_ptr& obj) {
    const hooked value(id, &on);
    return m.try_emplace(obj, value);  // copies the value into the new entry
  }
  static void erase(map& m, hooks&, int, const bomb_ptr& obj) { m.erase(obj); }
  static int popitem(map& m) { return m.popitem().second.id; }
  static bomb_ptr object(const map::iterator& it) { return it->first; }
  static std::vector<int> ids(const map& m) {
    std::vector<int> ids;
    for (const auto& [key, value] : m) ids.push_back(value.id);
    return ids;
  }
};

template <class P>
class hostile_hooked : public testing::Test {};
using hooked_maps = testing::Types<hooked_key, hooked_value>;
TYPED_TEST_SUITE(hostile_hooked, hooked_maps);

// popitem() moves the popped field out after the entry left the table: the move may destroy
// the map (it moved out first, then erased the entry of the map it had destroyed).
TYPED_TEST(hostile_hooked, popitem_whose_move_destroys_the_map) {
  hooks on;
  auto container = std::make_unique<typename TypeParam::map>();
  auto a = make_bomb(), b = make_bomb();
  TypeParam::insert(*container, on, 1, a);
  TypeParam::insert(*container, on, 2, b);
  on.move = [&] { container.reset(); };
  EXPECT_EQ(TypeParam::popitem(*container), 2);
  EXPECT_EQ(container, nullptr);
}

// ... or change it, even take out the entry being popped (clear()).
TYPED_TEST(hostile_hooked, popitem_whose_move_clears_the_map_and_inserts) {
  hooks on;
  typename TypeParam::map container;
  auto a = make_bomb(), b = make_bomb(), c = make_bomb();
  TypeParam::insert(container, on, 1, a);
  TypeParam::insert(container, on, 2, b);
  on.move = [&] {
    container.clear();
    TypeParam::insert(container, on, 3, c);
  };
  EXPECT_EQ(TypeParam::popitem(container), 2);
  EXPECT_EQ(TypeParam::ids(container), std::vector<int>{3});
}

// Copying the field into a new entry may change the map: the entry is filed after the copy,
// at the end of the order as it is then. (Its position was taken before: the copy's own
// insertion took it too, and erasing the new entry emptied the other's place in the order.)
TYPED_TEST(hostile_hooked, an_insertion_whose_field_copy_inserts_another_entry) {
  hooks on;
  typename TypeParam::map container;
  auto a = make_bomb(), b = make_bomb(), c = make_bomb();
  TypeParam::insert(container, on, 1, a);
  on.copy = [&] { TypeParam::insert(container, on, 2, b); };
  auto [it, added] = TypeParam::insert(container, on, 3, c);
  EXPECT_TRUE(added);
  EXPECT_EQ(it->first, TypeParam::insert(container, on, 3, c).first->first);  // found again
  EXPECT_EQ(TypeParam::ids(container), (std::vector<int>{1, 2, 3}));
  TypeParam::erase(container, on, 3, c);
  EXPECT_EQ(TypeParam::ids(container), (std::vector<int>{1, 2}));
  b.reset();
  EXPECT_EQ(TypeParam::ids(container), std::vector<int>{1});
}

// ... erase entries, so that the order is compacted under it ...
TYPED_TEST(hostile_hooked, an_insertion_whose_field_copy_compacts_the_order) {
  hooks on;
  typename TypeParam::map container;
  std::vector<bomb_ptr> objects;
  for (int i = 0; i < 10; ++i) {
    objects.push_back(make_bomb());
    TypeParam::insert(container, on, i, objects.back());
  }
  for (int i = 1; i < 9; ++i) TypeParam::erase(container, on, i, objects[i]);  // 8 holes
  on.copy = [&] { TypeParam::erase(container, on, 9, objects[9]); };           // the 9th compacts
  auto c = make_bomb();
  TypeParam::insert(container, on, 10, c);
  EXPECT_EQ(TypeParam::ids(container), (std::vector<int>{0, 10}));
  TypeParam::erase(container, on, 10, c);
  EXPECT_EQ(TypeParam::ids(container), std::vector<int>{0});
}

// ... insert the very key being inserted (the insertion then finds it, as if it came first) ...
TYPED_TEST(hostile_hooked, an_insertion_whose_field_copy_inserts_the_same_key) {
  hooks on;
  typename TypeParam::map container;
  auto c = make_bomb();
  on.copy = [&] { TypeParam::insert(container, on, 3, c); };
  auto [it, added] = TypeParam::insert(container, on, 3, c);
  EXPECT_FALSE(added);
  EXPECT_EQ(TypeParam::ids(container), std::vector<int>{3});
  EXPECT_EQ(TypeParam::object(it), c);
}

// ... or replace the map's contents: the entry goes into the new ones, and its object's death
// reaches them (it was made for the old contents' death inbox, freed with them).
TYPED_TEST(hostile_hooked, an_insertion_whose_field_copy_replaces_the_contents) {
  hooks on;
  typename TypeParam::map container;
  auto a = make_bomb(), c = make_bomb();
  TypeParam::insert(container, on, 1, a);
  on.copy = [&] { container = typename TypeParam::map(); };
  EXPECT_TRUE(TypeParam::insert(container, on, 3, c).second);
  EXPECT_EQ(TypeParam::ids(container), std::vector<int>{3});
  c.reset();
  EXPECT_EQ(container.size(), 0u);
}

// weak_key_map::insert_or_assign (and update) on a present key makes the new value before
// taking the old one out: if making it erased the entry, it is put in a new entry.
TEST(hostile_hooked_fields, insert_or_assign_whose_value_copy_erases_the_key) {
  hooks on;
  weakref::weak_key_map<bomb, hooked> map;
  auto a = make_bomb(), b = make_bomb();
  map.insert_or_assign(a, hooked(1, &on));
  map.insert_or_assign(b, hooked(2, &on));
  on.copy = [&] { map.erase(a); };
  const hooked value(3, &on);
  auto [it, added] = map.insert_or_assign(a, value);
  EXPECT_TRUE(added);  // the entry was gone
  EXPECT_EQ(it->first, a);
  EXPECT_EQ(hooked_value::ids(map), (std::vector<int>{2, 3}));

  on.copy = [&] { map.clear(); };
  std::vector<std::pair<bomb_ptr, hooked>> items{{b, hooked(4, &on)}, {a, hooked(5, &on)}};
  map.update(items);
  EXPECT_EQ(hooked_value::ids(map), (std::vector<int>{4, 5}));
}

// weak_key_map::pop(key) moves the value out after the entry left the table.
TEST(hostile_hooked_fields, pop_whose_value_move_destroys_or_clears_the_weak_key_map) {
  using map = weakref::weak_key_map<bomb, hooked>;
  hooks on;
  auto container = std::make_unique<map>();
  auto a = make_bomb(), b = make_bomb();
  container->insert_or_assign(a, hooked(1, &on));
  container->insert_or_assign(b, hooked(2, &on));
  on.move = [&] { container.reset(); };
  EXPECT_EQ(container->pop(a).id, 1);
  EXPECT_EQ(container, nullptr);

  container = std::make_unique<map>();
  container->insert_or_assign(a, hooked(1, &on));
  container->insert_or_assign(b, hooked(2, &on));
  on.move = [&] { container->clear(); };
  EXPECT_EQ(container->pop(a, hooked()).id, 1);
  EXPECT_TRUE(container->empty());
}

// A field whose moves may throw is moved out of a popped entry before the entry leaves, so a
// throw leaves the map unchanged (the strong guarantee; such a move must not change the map).
struct throwing_move {
  explicit throwing_move(int i) : id(i) {}
  throwing_move(const throwing_move&) = default;
  // NOLINTNEXTLINE(performance-noexcept-move-constructor,bugprone-exception-escape): the point
  throwing_move(throwing_move&& other) : id(other.id) {  // not noexcept
    if (armed) throw std::runtime_error("move");
  }
  throwing_move& operator=(const throwing_move&) = default;
  throwing_move& operator=(throwing_move&&) = default;
  ~throwing_move() = default;
  bool operator==(const throwing_move& other) const { return id == other.id; }
  static inline bool armed = false;
  int id;
};
struct throwing_move_hash {
  std::size_t operator()(const throwing_move& key) const {
    return static_cast<std::size_t>(key.id);
  }
};

TEST(hostile_fields, a_pop_whose_move_throws_leaves_the_map_unchanged) {
  auto a = make_bomb(), b = make_bomb();
  weakref::weak_value_map<throwing_move, bomb, throwing_move_hash> keyed;
  keyed.try_emplace(throwing_move(1), a);
  keyed.try_emplace(throwing_move(2), b);
  weakref::weak_key_map<bomb, throwing_move> valued;
  valued.try_emplace(a, throwing_move(1));
  valued.try_emplace(b, throwing_move(2));
  throwing_move::armed = true;
  EXPECT_THROW(keyed.popitem(), std::runtime_error);
  EXPECT_THROW(valued.popitem(), std::runtime_error);
  EXPECT_THROW(valued.pop(a), std::runtime_error);
  EXPECT_THROW(valued.pop(a, throwing_move(0)), std::runtime_error);
  throwing_move::armed = false;
  EXPECT_EQ(keyed.size(), 2u);
  EXPECT_EQ(valued.size(), 2u);
  EXPECT_EQ(keyed.popitem().first.id, 2);
  EXPECT_EQ(valued.popitem().second.id, 2);
  EXPECT_EQ(valued.pop(a).id, 1);
}

// The copies a reading member hands out are made while it iterates: if one destroys the map,
// the listing stops there (its iterator was detached). Not a fix: this pins the documented rule.
TEST(hostile_hooked_fields, listings_whose_copy_destroys_the_map_stop) {
  hooks on;
  auto keyed = std::make_unique<hooked_key::map>();
  auto a = make_bomb(), b = make_bomb();
  hooked_key::insert(*keyed, on, 1, a);
  hooked_key::insert(*keyed, on, 2, b);
  on.copy = [&] { keyed.reset(); };
  EXPECT_EQ(std::as_const(*keyed).keys().size(), 1u);
  EXPECT_EQ(keyed, nullptr);

  auto valued = std::make_unique<hooked_value::map>();
  hooked_value::insert(*valued, on, 1, a);
  hooked_value::insert(*valued, on, 2, b);
  on.copy = [&] { valued.reset(); };
  EXPECT_EQ(valued->items().size(), 1u);
  EXPECT_EQ(valued, nullptr);
  valued = std::make_unique<hooked_value::map>();
  hooked_value::insert(*valued, on, 1, a);
  on.copy = [&] { valued.reset(); };
  EXPECT_EQ(std::as_const(*valued).get(a)->id, 1);
  EXPECT_EQ(valued, nullptr);
}

// Hash runs before an operation reads the table, so it may change the map (not destroy it).
// Not a fix: this pins the documented order.
TEST(hostile_hooked_fields, a_hash_that_changes_the_weak_value_map) {
  hooks on;
  hooked_key::map map;
  auto a = make_bomb(), b = make_bomb(), c = make_bomb();
  hooked_key::insert(map, on, 1, a);
  on.hash = [&] { hooked_key::insert(map, on, 2, b); };
  map.insert_or_assign(hooked(3, &on), c);
  EXPECT_EQ(hooked_key::ids(map), (std::vector<int>{1, 2, 3}));
  on.hash = [&] { map.erase(hooked(2, &on)); };
  EXPECT_EQ(map.pop(hooked(2, &on), nullptr), nullptr);  // erased first
  on.hash = [&] { map.clear(); };
  EXPECT_EQ(map.get(hooked(3, &on)), nullptr);
  EXPECT_TRUE(map.empty());
}

// Reading members change nothing: size() leaves a dead entry's value alone.
TEST(hostile_fields, reading_members_destroy_nothing) {
  weakref::weak_key_map<bomb, fuse> map;
  int destroyed = 0;
  auto key = make_bomb();
  map[key] = fuse([&] { ++destroyed; });
  auto other = make_bomb();
  map[other] = fuse();
  key.reset();
  const auto& reader = map;
  EXPECT_EQ(reader.size(), 1u);
  EXPECT_TRUE(reader.contains(other));
  EXPECT_EQ(reader.keys().size(), 1u);
  std::size_t n = 0;
  for (const auto& kv : reader) n += kv.first != nullptr;
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(destroyed, 0);
  map.erase(other);  // changing: the dead entry's value goes now
  EXPECT_EQ(destroyed, 1);
}

// Several threads read one const container whose objects died (TSan: no race).
template <class C>
void read_concurrently(const C& container, std::size_t live) {
  std::atomic<bool> wrong{false};
  auto reader = [&] {
    for (int round = 0; round < 200; ++round) {
      if (container.size() != live) wrong = true;
      std::size_t n = 0;
      for (auto it = container.begin(); it != container.end(); ++it) ++n;
      if (n != live) wrong = true;
    }
  };
  std::thread a(reader), b(reader);
  a.join();
  b.join();
  EXPECT_FALSE(wrong.load());
}

TYPED_TEST(hostile, const_members_run_on_several_threads_after_deaths) {
  TypeParam container;
  std::vector<bomb_ptr> objects;
  for (int i = 0; i < 50; ++i) {
    objects.push_back(make_bomb());
    put(container, i, objects.back());
  }
  for (std::size_t i = 0; i < objects.size(); i += 2) objects[i].reset();  // 25 deaths posted
  read_concurrently(static_cast<const TypeParam&>(container), 25);
  EXPECT_EQ(container.size(), 25u);
}

// The iterator an insertion returns sits in a slot of its own (table_cursor.hpp); dropping it
// (and a copy, which is listed) on one thread while others make and drop iterators: no race.
TYPED_TEST(hostile, an_insertions_iterator_goes_on_one_thread_while_others_read) {
  TypeParam container;
  std::vector<bomb_ptr> objects(50);
  for (auto& obj : objects) obj = make_bomb();
  for (int i = 0; i < 49; ++i) put(container, i, objects[i]);
  auto kept = [&] {
    if constexpr (std::is_same_v<TypeParam, value_map>) {
      return container.try_emplace(49, objects[49]).first;
    } else if constexpr (std::is_same_v<TypeParam, key_map>) {
      return container.try_emplace(objects[49], 49).first;
    } else {
      return container.insert(objects[49]).first;
    }
  }();
  auto copy = kept;
  std::thread dropper([&] {
    for (int round = 0; round < 50; ++round) std::this_thread::yield();
    kept = typename TypeParam::iterator();
    copy = typename TypeParam::iterator();
  });
  read_concurrently(static_cast<const TypeParam&>(container), 50);
  dropper.join();
  for (int i = 0; i < 49; ++i) objects[i].reset();
  EXPECT_EQ(container.size(), 1u);  // with no iterator left, the order may compact
}

}  // namespace
