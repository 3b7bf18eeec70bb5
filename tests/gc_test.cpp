// Tests for weakref::gc: which objects are tracked, what collect() frees and what it leaves
// alone, the edges the visitor understands, and the gc module surface (counts, thresholds,
// objects, stats, callbacks).
#include "weakref/gc.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "support/gc_nodes.hpp"
#include "support/tracked.hpp"
#include "support/unraisable_log.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_set.hpp"

namespace {

using testing::ElementsAre;

// Events whose order across objects is not part of the contract, in a fixed order.
std::vector<std::string> sorted(std::vector<std::string> events) {
  std::sort(events.begin(), events.end());
  return events;
}

struct untraced {
  std::shared_ptr<gc_node> owned;
};

namespace adl {
struct outside_type {  // a type one cannot change: its traverse is a free function
  std::shared_ptr<outside_type> other;
  event_log* log = nullptr;
  ~outside_type() {
    if (log) log->add("~outside");
  }
};
template <class V>
void traverse(outside_type& t, V& visit) {
  visit(t.other);
}
}  // namespace adl

TEST(gc, types_with_traverse_are_tracked_and_others_are_not) {
  event_log log;
  auto node = make_node(log, "a");
  EXPECT_TRUE(weakref::gc::is_tracked(node));
  EXPECT_TRUE(weakref::gc::is_tracked(weakref::make_shared<adl::outside_type>()));
  EXPECT_FALSE(weakref::gc::is_tracked(weakref::make_shared<untraced>()));
  EXPECT_FALSE(weakref::gc::is_tracked(std::make_shared<gc_node>(log, "std")));
  EXPECT_FALSE(weakref::gc::is_tracked(std::shared_ptr<gc_node>()));
  std::shared_ptr<const void> erased = node;
  EXPECT_TRUE(weakref::gc::is_tracked(erased));
}

TEST(gc, collect_frees_a_two_cycle_and_returns_how_many_it_freed) {
  event_log log;
  auto [a, b] = make_pair_cycle(log, "a", "b");
  weakref::ref<gc_node> ra(a);
  a.reset();
  b.reset();
  EXPECT_TRUE(log.events.empty());  // std::shared_ptr alone leaks it
  EXPECT_TRUE(ra.alive());
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_THAT(sorted(log.events), ElementsAre("~a", "~b"));
  EXPECT_FALSE(ra.alive());
  EXPECT_EQ(ra(), nullptr);
  EXPECT_EQ(weakref::gc::collect(), 0u);
}

TEST(gc, collect_frees_a_self_cycle_and_a_longer_chain) {
  event_log log;
  auto self = make_node(log, "self");
  self->next = self;
  auto a = make_node(log, "a");
  auto b = make_node(log, "b");
  auto c = make_node(log, "c");
  a->next = b;
  b->next = c;
  c->kids.push_back(a);
  self.reset();
  a.reset();
  b.reset();
  c.reset();
  EXPECT_EQ(weakref::gc::collect(), 4u);
  EXPECT_THAT(sorted(log.events), ElementsAre("~a", "~b", "~c", "~self"));
}

// Counts the objects whose destructor finds one of their visited edges still set.
struct clear_checked_node {
  std::shared_ptr<clear_checked_node> next;
  std::vector<std::shared_ptr<clear_checked_node>> more;
  int* uncleared_at_death = nullptr;
  ~clear_checked_node() {
    if (next || !more.empty()) ++*uncleared_at_death;
  }
  template <class V>
  void traverse(V& visit) {
    visit(next);
    visit(more);
  }
};

// Each garbage object is cleared, then let go (CPython's delete_garbage): an object dies when
// the last garbage edge to it is cleared, which may come before or after its own turn in the
// collector's order; either way its own edges were cleared first.
TEST(gc, every_garbage_destructor_finds_its_own_edges_cleared) {
  int uncleared = 0;
  auto make_ring = [&](int n, int step) {
    std::vector<std::shared_ptr<clear_checked_node>> ring;
    for (int i = 0; i < n; ++i) {
      ring.push_back(weakref::make_shared<clear_checked_node>());
      ring.back()->uncleared_at_death = &uncleared;
    }
    for (int i = 0; i < n; ++i) ring[i]->next = ring[(i + step) % n];
    return ring;
  };
  make_ring(8, 1);  // each holds the next allocated
  make_ring(8, 7);  // each holds the one allocated before it
  auto clique = make_ring(5, 1);
  for (auto& node : clique) node->more = clique;
  clique.clear();
  EXPECT_EQ(weakref::gc::collect(), 21u);
  EXPECT_EQ(uncleared, 0);
}

// Rule (1) has traverse take the lock its object's writers take; a destructor may take it too
// (to leave an index the lock guards). The collector lets go of what a garbage object's traverse
// showed only after that traverse returned: no destructor runs inside it. `scene_locked` stands
// for such a lock (a std::mutex locked twice on one thread would hang the test instead).
bool scene_locked = false;
int destroyed_under_the_lock = 0;
int destroyed = 0;
void note_destruction() {
  ++destroyed;
  if (scene_locked) ++destroyed_under_the_lock;
}
struct scene_leaf {  // untracked: only garbage owns it
  ~scene_leaf() { note_destruction(); }
};
struct scene_key {};
struct locking_node {
  std::shared_ptr<locking_node> next;
  std::shared_ptr<scene_leaf> leaf = std::make_shared<scene_leaf>();
  std::vector<std::shared_ptr<scene_leaf>> leaves{std::make_shared<scene_leaf>(),
                                                  std::make_shared<scene_leaf>()};
  std::optional<std::shared_ptr<scene_leaf>> maybe_leaf = std::make_shared<scene_leaf>();
  // Node containers: a set's elements and a map's keys are const in place.
  std::set<std::shared_ptr<scene_leaf>> leaf_set{std::make_shared<scene_leaf>(),
                                                 std::make_shared<scene_leaf>()};
  std::map<std::shared_ptr<scene_leaf>, std::shared_ptr<scene_leaf>> leaf_map{
      {std::make_shared<scene_leaf>(), std::make_shared<scene_leaf>()}};
  weakref::weak_key_map<scene_key, std::shared_ptr<scene_leaf>> side_table;
  ~locking_node() { note_destruction(); }
  template <class V>
  void traverse(V& visit) {
    scene_locked = true;
    visit(next);
    visit(leaf);
    visit(leaves);
    visit(maybe_leaf);
    visit(leaf_set);
    visit(leaf_map);
    visit(side_table);
    scene_locked = false;
  }
};

TEST(gc, no_destructor_runs_inside_the_traverse_of_the_garbage_that_held_its_object) {
  weakref::gc::collect();
  auto key = weakref::make_shared<scene_key>();  // alive: its values are the maps' to release
  {
    std::vector<std::shared_ptr<locking_node>> ring;
    for (int i = 0; i < 3; ++i) ring.push_back(weakref::make_shared<locking_node>());
    for (int i = 0; i < 3; ++i) {
      ring[i]->next = ring[(i + 1) % 3];
      ring[i]->side_table[key] = std::make_shared<scene_leaf>();
    }
    auto pair_a = weakref::make_shared<locking_node>();
    auto pair_b = weakref::make_shared<locking_node>();
    pair_a->next = pair_b;
    pair_b->next = pair_a;
  }
  destroyed = destroyed_under_the_lock = 0;
  EXPECT_EQ(weakref::gc::collect(), 5u);
  EXPECT_EQ(destroyed, 5 * 9 + 3);  // each node and its 8 leaves; 3 side-table values
  EXPECT_EQ(destroyed_under_the_lock, 0);
}

// An unordered container is cleared without hashing its elements again: a hash may read a
// member of its element that the collection has already cleared.
struct named_peer;
struct by_name {
  std::size_t operator()(const std::shared_ptr<named_peer>& p) const noexcept;
};
struct named_peer {
  std::shared_ptr<const std::string> name;
  std::unordered_set<std::shared_ptr<named_peer>, by_name> peers;
  template <class V>
  void traverse(V& visit) {
    visit(name);
    visit(peers);
  }
};
std::size_t by_name::operator()(const std::shared_ptr<named_peer>& p) const noexcept {
  return p->name ? std::hash<std::string>()(*p->name) : 0;
}

TEST(gc, an_unordered_container_is_cleared_without_hashing_its_elements) {
  {
    std::vector<std::shared_ptr<named_peer>> peers;
    for (int i = 0; i < 8; ++i) {
      peers.push_back(weakref::make_shared<named_peer>());
      peers.back()->name = std::make_shared<const std::string>("peer " + std::to_string(i * 7919));
    }
    for (auto& a : peers) {
      for (auto& b : peers) {
        if (a != b) a->peers.insert(b);
      }
    }
  }
  EXPECT_EQ(weakref::gc::collect(), 8u);
}

// An element's traverse that throws while its garbage owner's range is cleared: the error goes
// to the unraisable hook, and the rest of the range is cleared all the same. Here the cycle runs
// through the element that throws: left uncleared, it would keep its owner forever.
bool throw_while_clearing = false;
int thrower_leaves_destroyed = 0;
struct thrower_leaf {
  ~thrower_leaf() { ++thrower_leaves_destroyed; }
};
struct range_owner;
struct throwing_element {
  std::shared_ptr<range_owner> back;
  std::shared_ptr<thrower_leaf> leaf = std::make_shared<thrower_leaf>();
  template <class V>
  void traverse(V& visit) {
    if (throw_while_clearing) throw std::runtime_error("element");
    visit(back);
    visit(leaf);
  }
};
struct range_owner {
  std::vector<throwing_element> elements = std::vector<throwing_element>(3);
  template <class V>
  void traverse(V& visit) {
    visit(elements);
  }
};

TEST(gc, a_range_whose_element_traverse_throws_while_clearing_is_cleared_all_the_same) {
  weakref::gc::collect();
  unraisable_log unraisable;
  {
    auto owner = weakref::make_shared<range_owner>();
    owner->elements[0].back = owner;
    weakref::ref<range_owner> watch(owner, [] { throw_while_clearing = true; });  // before clearing
    owner.reset();
    thrower_leaves_destroyed = 0;
    EXPECT_EQ(weakref::gc::collect(), 1u);
  }
  throw_while_clearing = false;
  EXPECT_EQ(thrower_leaves_destroyed, 3);
  EXPECT_THAT(unraisable.entries, ElementsAre("weakref::gc traverse: element"));
}

TEST(gc, an_object_alive_from_outside_and_all_it_reaches_are_not_touched) {
  event_log log;
  auto [a, b] = make_pair_cycle(log, "a", "b");
  auto c = make_node(log, "c");
  b->kids.push_back(c);
  c->next = a;  // c -> a: still one cycle, held from outside through `a`
  auto* b_raw = b.get();
  b.reset();
  c.reset();
  EXPECT_EQ(weakref::gc::collect(), 0u);
  EXPECT_TRUE(log.events.empty());
  // Not one edge changed.
  ASSERT_EQ(a->next.get(), b_raw);
  EXPECT_EQ(b_raw->next, a);
  ASSERT_EQ(b_raw->kids.size(), 1u);
  EXPECT_EQ(b_raw->kids[0]->next, a);
  a.reset();
  EXPECT_EQ(weakref::gc::collect(), 3u);
  EXPECT_THAT(sorted(log.events), ElementsAre("~a", "~b", "~c"));
}

TEST(gc, garbage_that_reaches_a_live_object_leaves_it_and_its_edges_alone) {
  event_log log;
  auto [a, b] = make_pair_cycle(log, "a", "b");
  auto live = make_node(log, "live");
  auto live_child = make_node(log, "live_child");
  live->next = live_child;
  a->kids.push_back(live);
  a.reset();
  b.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_THAT(sorted(log.events), ElementsAre("~a", "~b"));
  EXPECT_EQ(live->next, live_child);
  EXPECT_EQ(live.use_count(), 1);  // the garbage's edge to it was released
}

TEST(gc, an_object_owned_by_an_untracked_object_is_alive) {
  event_log log;
  auto a = make_node(log, "a");
  auto u = weakref::make_shared<untraced>();
  u->owned = a;
  a->kids.push_back(std::make_shared<gc_node>(log, "std"));  // std::make_shared: not tracked
  std::weak_ptr<untraced> wu = u;
  a.reset();
  {
    // `a` is owned by an object the collector cannot see into (a root): it must stay.
    auto a_owner = u;
    u.reset();
    EXPECT_EQ(weakref::gc::collect(), 0u);
    EXPECT_TRUE(log.events.empty());
  }
  EXPECT_TRUE(wu.expired());
  EXPECT_THAT(sorted(log.events), ElementsAre("~a", "~std"));
}

TEST(gc, a_free_traverse_found_by_adl_tracks_a_type) {
  event_log log;
  auto t = weakref::make_shared<adl::outside_type>();
  t->log = &log;
  t->other = t;
  t.reset();
  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_THAT(log.events, ElementsAre("~outside"));
}

// Every kind of member the visitor understands, each closing a cycle back to its owner.
struct everything {
  struct inner {
    std::shared_ptr<everything> back;
    template <class V>
    void traverse(V& visit) {
      visit(back);
    }
  };
  explicit everything(event_log& log) : log_(&log) {}
  ~everything() { log_->add("~everything"); }

  std::vector<std::vector<std::shared_ptr<everything>>> nested;
  std::map<std::string, std::shared_ptr<everything>> by_name;
  std::set<std::shared_ptr<everything>> members;
  std::optional<std::shared_ptr<everything>> maybe;
  std::pair<int, std::shared_ptr<everything>> pair;
  std::tuple<std::string, std::shared_ptr<everything>, double> tuple;
  std::variant<int, std::shared_ptr<everything>> variant;
  std::array<std::shared_ptr<everything>, 2> array;
  inner with_traverse;
  weakref::weak_key_map<everything, std::shared_ptr<everything>> side_table;
  weakref::weak_set<everything> observers;
  std::weak_ptr<everything> weak;
  std::string label = "not an edge";
  int* raw = nullptr;

  template <class V>
  void traverse(V& visit) {
    visit(nested);
    visit("by_name", by_name);
    visit(members);
    visit(maybe);
    visit(pair);
    visit(tuple);
    visit(variant);
    visit(array);
    visit(with_traverse);
    visit(side_table);
    visit(observers);
    visit(weak);
    visit(label);
    visit(raw);
  }

 private:
  event_log* log_;
};

using member_setter = void (*)(everything&, const std::shared_ptr<everything>&);

class gc_visits : public testing::TestWithParam<member_setter> {};

TEST_P(gc_visits, a_cycle_through_this_member_is_freed) {
  event_log log;
  auto x = weakref::make_shared<everything>(log);
  auto y = weakref::make_shared<everything>(log);
  GetParam()(*x, y);
  GetParam()(*y, x);
  x.reset();
  y.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_THAT(log.events, ElementsAre("~everything", "~everything"));
}

INSTANTIATE_TEST_SUITE_P(
    members, gc_visits,
    testing::Values(
        [](everything& e, const std::shared_ptr<everything>& o) { e.nested.push_back({o}); },
        [](everything& e, const std::shared_ptr<everything>& o) { e.by_name["o"] = o; },
        [](everything& e, const std::shared_ptr<everything>& o) { e.members.insert(o); },
        [](everything& e, const std::shared_ptr<everything>& o) { e.maybe = o; },
        [](everything& e, const std::shared_ptr<everything>& o) { e.pair.second = o; },
        [](everything& e, const std::shared_ptr<everything>& o) { std::get<1>(e.tuple) = o; },
        [](everything& e, const std::shared_ptr<everything>& o) { e.variant = o; },
        [](everything& e, const std::shared_ptr<everything>& o) { e.array[1] = o; },
        [](everything& e, const std::shared_ptr<everything>& o) { e.with_traverse.back = o; },
        [](everything& e, const std::shared_ptr<everything>& o) { e.side_table[o] = o; }));

TEST(gc, weak_edges_do_not_keep_garbage_alive) {
  event_log log;
  auto x = weakref::make_shared<everything>(log);
  auto y = weakref::make_shared<everything>(log);
  x->array[0] = y;
  y->array[0] = x;
  x->weak = y;
  x->observers.add(y);
  x.reset();
  y.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
}

// A traverse that shows an edge only as const: counted, but collect() cannot release it.
struct const_edge {
  explicit const_edge(event_log& log) : log_(&log) {}
  ~const_edge() { log_->add("~const_edge"); }
  std::shared_ptr<const_edge> next;
  template <class V>
  void traverse(V& visit) {
    visit(std::as_const(next));
  }
  event_log* log_;
};

TEST(gc, a_cycle_held_only_by_const_edges_is_found_but_not_freed) {
  event_log log;
  auto [a, b] = make_cycle_of<const_edge>(log);
  weakref::ref<const_edge> ra(a);
  std::weak_ptr<const_edge> wa = a;
  a.reset();
  b.reset();
  auto before = weakref::gc::get_stats();
  EXPECT_EQ(weakref::gc::collect(), 0u);
  auto after = weakref::gc::get_stats();
  EXPECT_EQ(after.uncollectable - before.uncollectable, 2u);
  EXPECT_TRUE(log.events.empty());
  EXPECT_FALSE(ra.alive());  // condemned: weak references read dead
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(ra.lock(), nullptr);
  }
  EXPECT_EQ(wa.use_count(), 1);  // those locks took no reference, and none is kept anywhere
  // A std::weak_ptr still reaches it: break the cycle by hand.
  auto zombie = wa.lock();
  ASSERT_NE(zombie, nullptr);
  zombie->next->next.reset();
  zombie.reset();
  EXPECT_THAT(log.events, ElementsAre("~const_edge", "~const_edge"));
}

struct alignas(64) aligned_node {
  std::shared_ptr<aligned_node> next;
  template <class V>
  void traverse(V& visit) {
    visit(next);
  }
};

TEST(gc, an_over_aligned_tracked_type_is_aligned_and_collected) {
  auto a = weakref::make_shared<aligned_node>();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.get()) % 64, 0u);
  EXPECT_TRUE(weakref::gc::is_tracked(a));
  a->next = a;
  a.reset();
  EXPECT_EQ(weakref::gc::collect(), 1u);
}

struct shared_self : std::enable_shared_from_this<shared_self> {
  std::shared_ptr<shared_self> next;
  template <class V>
  void traverse(V& visit) {
    visit(next);
  }
};

TEST(gc, enable_shared_from_this_works_on_a_tracked_type) {
  auto a = weakref::make_shared<shared_self>();
  EXPECT_EQ(a->shared_from_this(), a);
  a->next = a->shared_from_this();
  std::weak_ptr<shared_self> wa = a;
  a.reset();
  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_TRUE(wa.expired());
}

TEST(gc, get_count_counts_tracked_allocations_since_the_last_collection) {
  event_log log;
  weakref::gc::collect();
  EXPECT_EQ(weakref::gc::get_count(), 0u);
  auto a = make_node(log, "a");
  auto b = make_node(log, "b");
  auto u = weakref::make_shared<untraced>();
  EXPECT_EQ(weakref::gc::get_count(), 2u);
  weakref::gc::collect();
  EXPECT_EQ(weakref::gc::get_count(), 0u);
}

TEST(gc, get_objects_returns_the_live_tracked_objects) {
  event_log log;
  auto a = make_node(log, "a");
  auto u = weakref::make_shared<untraced>();
  auto objects = weakref::gc::get_objects();
  std::shared_ptr<const void> erased_a = a;
  EXPECT_EQ(std::count(objects.begin(), objects.end(), erased_a), 1);
  std::shared_ptr<const void> erased_u = u;
  EXPECT_EQ(std::count(objects.begin(), objects.end(), erased_u), 0);
  EXPECT_EQ(a.use_count(), 3);  // a, erased_a and the vector
}

TEST(gc, get_stats_adds_up_the_collections) {
  event_log log;
  auto before = weakref::gc::get_stats();
  auto [a, b] = make_pair_cycle(log, "a", "b");
  a.reset();
  b.reset();
  weakref::gc::collect();
  weakref::gc::collect();
  auto after = weakref::gc::get_stats();
  EXPECT_EQ(after.collections - before.collections, 2u);
  EXPECT_EQ(after.collected - before.collected, 2u);
  EXPECT_EQ(after.uncollectable, before.uncollectable);
}

TEST(gc, callbacks_run_before_and_after_each_collection) {
  event_log log;
  std::vector<std::string> seen;
  auto id = weakref::gc::add_callback(
      [&](weakref::gc::phase p, const weakref::gc::collection_info& info) {
        seen.push_back((p == weakref::gc::phase::start ? "start " : "stop ") +
                       std::to_string(info.collected));
        if (p == weakref::gc::phase::stop) seen.push_back("log " + std::to_string(log.size()));
      });
  auto [a, b] = make_pair_cycle(log, "a", "b");
  a.reset();
  b.reset();
  weakref::gc::collect();
  EXPECT_TRUE(weakref::gc::remove_callback(id));
  EXPECT_FALSE(weakref::gc::remove_callback(id));
  weakref::gc::collect();
  EXPECT_THAT(seen, ElementsAre("start 0", "stop 2", "log 2"));
}

TEST(gc, a_throwing_gc_callback_goes_to_the_unraisable_hook) {
  unraisable_log unraisable;
  auto id = weakref::gc::add_callback([](weakref::gc::phase, const weakref::gc::collection_info&) {
    throw std::runtime_error("x");
  });
  event_log log;
  auto a = make_node(log, "a");
  a->next = a;
  a.reset();
  EXPECT_EQ(weakref::gc::collect(), 1u);
  weakref::gc::remove_callback(id);
  EXPECT_THAT(unraisable.entries,
              ElementsAre("weakref::gc callback: x", "weakref::gc callback: x"));
}

TEST(gc, automatic_collection_is_off_by_default_and_follows_the_threshold_when_enabled) {
  event_log log;
  EXPECT_FALSE(weakref::gc::isenabled());
  EXPECT_EQ(weakref::gc::get_threshold(), 700u);
  weakref::gc::collect();
  { auto [a, b] = make_pair_cycle(log, "a", "b"); }
  for (int i = 0; i < 1000; ++i) make_node(log, "x");
  EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "~a"), 0);

  weakref::gc::set_threshold(10);
  weakref::gc::enable();
  EXPECT_TRUE(weakref::gc::isenabled());
  for (int i = 0; i < 10; ++i) make_node(log, "y");
  weakref::gc::disable();
  weakref::gc::set_threshold(700);
  EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "~a"), 1);
  EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "~b"), 1);
}

TEST(gc, a_zero_threshold_turns_automatic_collection_off) {
  event_log log;
  weakref::gc::set_threshold(0);
  EXPECT_EQ(weakref::gc::get_threshold(), 0u);
  weakref::gc::enable();
  { auto [a, b] = make_pair_cycle(log, "a", "b"); }
  for (int i = 0; i < 2000; ++i) make_node(log, "x");
  weakref::gc::disable();
  weakref::gc::set_threshold(700);
  EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "~a"), 0);
  EXPECT_EQ(weakref::gc::collect(), 2u);
}

TEST(gc, thresholds_read_back_as_set) {
  weakref::gc::set_threshold(SIZE_MAX);
  EXPECT_EQ(weakref::gc::get_threshold(), SIZE_MAX);
  weakref::gc::set_threshold(700);
  EXPECT_EQ(weakref::gc::get_threshold(), 700u);
}

// --- edit_scope (precondition (3) in gc.hpp) ---

TEST(gc_edit_scope, scopes_nest_and_a_collect_inside_one_returns_0) {
  event_log log;
  weakref::gc::collect();
  { auto [a, b] = make_pair_cycle(log, "a", "b"); }  // garbage
  {
    weakref::gc::edit_scope outer;
    EXPECT_EQ(weakref::gc::collect(), 0u);
    {
      weakref::gc::edit_scope inner;
      EXPECT_EQ(weakref::gc::collect(), 0u);
    }
    EXPECT_EQ(weakref::gc::collect(), 0u);  // the outer scope is still held
  }
  EXPECT_TRUE(log.events.empty());
  EXPECT_EQ(weakref::gc::collect(), 2u);
}

TEST(gc_edit_scope, tracked_make_shared_inside_a_scope_skips_automatic_collection) {
  event_log log;
  weakref::gc::collect();
  { auto [a, b] = make_pair_cycle(log, "a", "b"); }
  weakref::gc::set_threshold(5);
  weakref::gc::enable();
  {
    weakref::gc::edit_scope scope;
    for (int i = 0; i < 10; ++i) make_node(log, "x");  // each past the threshold: a collect()
    EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "~a"), 0);
  }
  make_node(log, "y");  // the count is still past the threshold: this one collects
  weakref::gc::disable();
  weakref::gc::set_threshold(700);
  EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "~a"), 1);
}

TEST(gc_edit_scope, a_callback_run_inside_a_scope_that_calls_collect_gets_0) {
  event_log log;
  weakref::gc::collect();
  { auto [a, b] = make_pair_cycle(log, "a", "b"); }
  std::optional<std::size_t> nested;
  auto x = make_node(log, "x");
  weakref::ref<gc_node> r(x, [&] { nested = weakref::gc::collect(); });
  {
    weakref::gc::edit_scope scope;
    x.reset();  // the death runs the callback inside the scope
  }
  EXPECT_EQ(nested, 0u);
  EXPECT_EQ(weakref::gc::collect(), 2u);
}

TEST(gc_edit_scope, a_collections_callbacks_may_open_scopes) {
  event_log log;
  weakref::gc::collect();
  auto [a, b] = make_pair_cycle(log, "a", "b");
  std::optional<std::size_t> nested;
  weakref::ref<gc_node> r(a, [&] {
    weakref::gc::edit_scope scope;  // the analysis is over: it does not wait
    nested = weakref::gc::collect();
  });
  a.reset();
  b.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_EQ(nested, 0u);
  { auto [c, d] = make_pair_cycle(log, "c", "d"); }
  EXPECT_EQ(weakref::gc::collect(), 2u);  // no scope was left behind
}

struct scope_in_traverse {
  static inline bool open_scope = false;
  std::shared_ptr<scope_in_traverse> next;
  template <class V>
  void traverse(V& visit) {
    if (open_scope) weakref::gc::edit_scope scope;
    visit(next);
  }
};

TEST(gc_edit_scope, a_scope_opened_in_a_traverse_throws_and_the_collection_is_abandoned) {
  weakref::gc::collect();
  weakref::ref<scope_in_traverse> r;
  {
    auto [a, b] = make_cycle_of<scope_in_traverse>();
    r = weakref::ref<scope_in_traverse>(a);
  }
  scope_in_traverse::open_scope = true;
  EXPECT_THROW(weakref::gc::collect(), std::logic_error);  // it would wait for itself
  EXPECT_THROW(weakref::gc::find_garbage(), std::logic_error);
  scope_in_traverse::open_scope = false;
  EXPECT_TRUE(r.alive());
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_FALSE(r.alive());
}

TEST(gc_edit_scope, introspection_on_a_thread_holding_a_scope_throws) {
  event_log log;
  auto x = make_node(log, "x");
  x->next = make_node(log, "y");
  weakref::gc::edit_scope scope;
  EXPECT_THROW(weakref::gc::why_alive(x), std::logic_error);
  EXPECT_THROW(weakref::gc::find_garbage(), std::logic_error);
  EXPECT_EQ(weakref::gc::get_referents(x).size(), 1u);  // no analysis: allowed
  EXPECT_EQ(weakref::gc::get_objects().size(), 2u);
}

// The control: what precondition (3) is about, made deterministic by a traverse that moves
// an edge (as a writer thread would between two traverses). Hub w is alive (held here); its
// spokes x and y each own an edge back to it. x's traverse moves x's edge into y, which the
// analysis then traverses: the edge is subtracted twice, w's own owner absorbs the error
// (its count reaches 0, not below), and the live hub is condemned: its weak references read
// dead and its members are released. Holding an edit_scope around a move makes this
// impossible; in a traverse (the collector's own thread) a scope throws instead.
struct moving_spoke;
struct moving_hub {
  std::shared_ptr<moving_spoke> x, y;
  template <class V>
  void traverse(V& visit) {
    visit(x);
    visit(y);
  }
};
struct moving_spoke {
  static inline bool move = false;
  std::vector<std::shared_ptr<moving_hub>> back;
  moving_spoke* twin = nullptr;
  bool traversed = false;
  template <class V>
  void traverse(V& visit) {
    visit(back);
    traversed = true;
    if (!move || twin->traversed) return;
    for (auto& e : back) twin->back.push_back(std::move(e));
    back.clear();
  }
};

TEST(gc_edit_scope, without_a_scope_a_move_between_two_traverses_condemns_a_live_object) {
  weakref::gc::collect();
  auto w = weakref::make_shared<moving_hub>();
  w->x = weakref::make_shared<moving_spoke>();
  w->y = weakref::make_shared<moving_spoke>();
  w->x->twin = w->y.get();
  w->y->twin = w->x.get();
  w->x->back.push_back(w);
  w->y->back.push_back(w);
  weakref::ref<moving_hub> r(w);
  moving_spoke::move = true;
  weakref::gc::collect();
  moving_spoke::move = false;
  // The current behaviour when the precondition is broken (not a promise): w is still held,
  // yet condemned.
  EXPECT_FALSE(r.alive());
  EXPECT_EQ(w->x, nullptr);
  EXPECT_EQ(w->y, nullptr);
}

}  // namespace
