// Tests for weakref::gc and weak references to garbage, CPython 3.11's rules: every weak
// reference to the garbage reads dead before any callback runs; a callback runs only when its
// weak reference is not garbage itself; finalizers on garbage run; garbage leaves every weak
// container. Also: hostile callbacks, destructors and traverses during a collection.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/gc_nodes.hpp"
#include "support/tracked.hpp"
#include "support/unraisable_log.hpp"
#include "weakref/finalize.hpp"
#include "weakref/gc.hpp"
#include "weakref/proxy.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_method.hpp"
#include "weakref/weak_set.hpp"
#include "weakref/weak_value_map.hpp"

namespace {

using testing::ElementsAre;

// Events whose order across objects is not part of the contract, in a fixed order.
std::vector<std::string> sorted(std::vector<std::string> events) {
  std::sort(events.begin(), events.end());
  return events;
}
using weakref::ref;

TEST(gc_weakrefs, every_weak_reference_to_the_garbage_reads_dead_before_any_callback) {
  event_log log;
  auto [a, b] = make_pair_cycle(log, "a", "b");
  ref<gc_node> plain_a(a);
  ref<gc_node> plain_b(b);
  weakref::proxy<gc_node> proxy_b(b);
  std::weak_ptr<gc_node> std_b = b;
  auto check = [&](const char* who) {
    log.add(std::string(who) + " sees a:" + (plain_a() ? "alive" : "dead") + " b:" +
            (plain_b() ? "alive" : "dead") + " proxy_b:" + (proxy_b.alive() ? "alive" : "dead"));
  };
  ref<gc_node> ra(a, [&] { check("cb_a"); });
  ref<gc_node> rb(b, [&] { check("cb_b"); });
  a.reset();
  b.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_THAT(sorted(log.events), ElementsAre("cb_a sees a:dead b:dead proxy_b:dead",
                                              "cb_b sees a:dead b:dead proxy_b:dead", "~a", "~b"));
  // Callbacks first, destructors after.
  EXPECT_EQ(log.events[0].substr(0, 2), "cb");
  EXPECT_EQ(log.events[1].substr(0, 2), "cb");
  EXPECT_THROW(proxy_b->name(), weakref::reference_error);
  EXPECT_TRUE(std_b.expired());
}

TEST(gc_weakrefs, a_ref_held_only_inside_the_garbage_never_calls_back) {
  event_log log;
  auto [a, b] = make_pair_cycle(log, "a", "b");
  b->held = ref<gc_node>(a, [&] { log.add("held by garbage"); });
  ref<gc_node> outside(a, [&] { log.add("held outside"); });
  a.reset();
  b.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_THAT(sorted(log.events), ElementsAre("held outside", "~a", "~b"));
}

TEST(gc_weakrefs, a_ref_held_inside_the_garbage_and_also_outside_calls_back) {
  event_log log;
  auto [a, b] = make_pair_cycle(log, "a", "b");
  ref<gc_node> copy_outside;
  b->held = ref<gc_node>(a, [&](const ref<gc_node>& dead) {
    log.add(std::string("called, dead:") + (dead() ? "no" : "yes"));
  });
  copy_outside = b->held;
  a.reset();
  b.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_THAT(sorted(log.events), ElementsAre("called, dead:yes", "~a", "~b"));
  EXPECT_FALSE(copy_outside.has_callback());
}

// CPython's handle_weakrefs decides which callbacks to call before calling any: a weakref that
// is live then is called back even if an earlier callback leaves garbage its only holder.
// Each callback drops the other ref's live handle, so whichever runs first would skip the
// other if the decision were made chain by chain.
TEST(gc_weakrefs, a_callback_that_leaves_another_ref_held_only_by_garbage_does_not_cancel_it) {
  event_log log;
  auto [ha, hb] = make_pair_cycle(log, "ha", "hb");  // garbage that holds the refs
  auto a = make_node(log, "a");
  a->next = a;
  auto b = make_node(log, "b");
  b->next = b;
  std::optional<ref<gc_node>> live_a, live_b;
  live_a.emplace(a, [&] {
    log.add("cb_a");
    live_b.reset();
  });
  live_b.emplace(b, [&] {
    log.add("cb_b");
    live_a.reset();
  });
  ha->held = *live_a;
  hb->held = *live_b;
  a.reset();
  b.reset();
  ha.reset();
  hb.reset();
  EXPECT_EQ(weakref::gc::collect(), 4u);
  EXPECT_THAT(sorted(log.events), ElementsAre("cb_a", "cb_b", "~a", "~b", "~ha", "~hb"));
}

// The same, from the other side: a callback drops the garbage's handle to another ref (through
// a pointer it kept), which still has a live one. That ref is not garbage: it is called back.
TEST(gc_weakrefs, a_callback_that_drops_garbage_handles_of_a_live_ref_does_not_cancel_it) {
  event_log log;
  auto [ha, hb] = make_pair_cycle(log, "ha", "hb");
  auto a = make_node(log, "a");
  a->next = a;
  auto b = make_node(log, "b");
  b->next = b;
  gc_node* holder_a = ha.get();
  gc_node* holder_b = hb.get();
  ref<gc_node> live_a(a, [&] {
    log.add("cb_a");
    holder_b->held = ref<gc_node>();
  });
  ref<gc_node> live_b(b, [&] {
    log.add("cb_b");
    holder_a->held = ref<gc_node>();
  });
  ha->held = live_a;
  hb->held = live_b;
  a.reset();
  b.reset();
  ha.reset();
  hb.reset();
  EXPECT_EQ(weakref::gc::collect(), 4u);
  EXPECT_THAT(sorted(log.events), ElementsAre("cb_a", "cb_b", "~a", "~b", "~ha", "~hb"));
}

TEST(gc_weakrefs, a_ref_held_by_a_live_object_calls_back) {
  event_log log;
  auto [a, b] = make_pair_cycle(log, "a", "b");
  auto watcher = make_node(log, "watcher");
  watcher->held = ref<gc_node>(a, [&] { log.add("watcher notified"); });
  a.reset();
  b.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_THAT(sorted(log.events), ElementsAre("watcher notified", "~a", "~b"));
}

TEST(gc_weakrefs, a_ref_held_only_by_garbage_is_cleared_even_when_its_object_lives) {
  event_log log;
  auto a = make_node(log, "a");
  a->next = a;
  auto x = make_node(log, "x");
  a->held = ref<gc_node>(x, [&] { log.add("garbage-held ref called back"); });
  EXPECT_EQ(weakref::getweakrefcount(x), 1u);
  a.reset();
  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_EQ(weakref::getweakrefcount(x), 0u);  // CPython clears weakrefs that are garbage
  x.reset();
  EXPECT_THAT(log.events, ElementsAre("~a", "~x"));
}

TEST(gc_weakrefs, a_garbage_held_ref_does_not_call_back_when_a_callback_kills_its_object) {
  event_log log;
  auto a = make_node(log, "a");
  a->next = a;
  auto x = make_node(log, "x");
  a->held = ref<gc_node>(x, [&] { log.add("garbage-held ref called back"); });
  std::size_t count_in_callback = 99;
  ref<gc_node> ra(a, [&] {
    count_in_callback = weakref::getweakrefcount(x);
    x.reset();  // x dies during the collection, while the garbage still holds the ref
  });
  a.reset();
  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_EQ(count_in_callback, 0u);
  EXPECT_THAT(log.events, ElementsAre("~x", "~a"));
}

TEST(gc_weakrefs, callbacks_of_one_object_run_newest_first) {
  event_log log;
  auto a = make_node(log, "a");
  a->next = a;
  ref<gc_node> first(a, [&] { log.add("first"); });
  ref<gc_node> second(a, [&] { log.add("second"); });
  a.reset();
  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_THAT(log.events, ElementsAre("second", "first", "~a"));
}

TEST(gc_weakrefs, a_finalizer_on_garbage_runs_once_and_detach_from_a_callback_cannot_stop_it) {
  event_log log;
  auto [a, b] = make_pair_cycle(log, "a", "b");
  weakref::finalize fin(a, [&] { log.add("finalized"); });
  ref<gc_node> later(a, [&] { log.add(fin.detach() ? "detached" : "too late to detach"); });
  a.reset();
  b.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_THAT(sorted(log.events), ElementsAre("finalized", "too late to detach", "~a", "~b"));
  EXPECT_FALSE(fin.alive());
  EXPECT_FALSE(fin());
}

TEST(gc_weakrefs, garbage_leaves_every_weak_container) {
  event_log log;
  auto [a, b] = make_pair_cycle(log, "a", "b");
  weakref::weak_set<gc_node> set{a, b};
  weakref::weak_value_map<std::string, gc_node> by_name{{"a", a}, {"b", b}};
  weakref::weak_key_map<gc_node, int> meta;
  meta[a] = 1;
  a.reset();
  b.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_EQ(set.size(), 0u);
  EXPECT_EQ(by_name.size(), 0u);
  EXPECT_EQ(by_name.get("a"), nullptr);
  EXPECT_EQ(meta.size(), 0u);
  EXPECT_EQ(set.begin(), set.end());
}

struct counter {
  std::shared_ptr<counter> self;
  int calls = 0;
  int bump() { return ++calls; }
  template <class V>
  void traverse(V& visit) {
    visit(self);
  }
};

TEST(gc_weakrefs, weak_methods_to_garbage_have_nothing_to_call) {
  auto c = weakref::make_shared<counter>();
  c->self = c;
  weakref::weak_method bump(c, &counter::bump);
  EXPECT_EQ(bump(), std::optional<int>(1));
  c.reset();
  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_EQ(bump(), std::nullopt);
}

TEST(gc_weakrefs, callbacks_may_drop_objects_make_refs_and_build_new_cycles) {
  event_log log;
  auto [a, b] = make_pair_cycle(log, "a", "b");
  auto bystander = make_node(log, "bystander");
  ref<gc_node> to_new;
  ref<gc_node> ra(a, [&] {
    bystander.reset();  // a plain death, nested in the collection's callback
    auto c = make_node(log, "c");
    c->next = c;
    to_new = ref<gc_node>(c);
    log.add(std::string("nested collect returns ") + std::to_string(weakref::gc::collect()));
  });
  a.reset();
  b.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_THAT(sorted(log.events),
              ElementsAre("nested collect returns 0", "~a", "~b", "~bystander"));
  EXPECT_TRUE(to_new.alive());
  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_FALSE(to_new.alive());
}

// A node whose destructor runs a collection, and one that builds a new cycle as it dies.
struct hostile_node {
  explicit hostile_node(event_log& log) : log_(&log) {}
  ~hostile_node() {
    log_->add("destructor collect returns " + std::to_string(weakref::gc::collect()));
    auto orphan = make_node(*log_, "orphan");
    orphan->next = orphan;
  }
  std::shared_ptr<hostile_node> next;
  template <class V>
  void traverse(V& visit) {
    visit(next);
  }
  event_log* log_;
};

TEST(gc_weakrefs, a_destructor_run_by_a_collection_may_collect_and_make_garbage) {
  event_log log;
  auto h = weakref::make_shared<hostile_node>(log);
  h->next = h;
  h.reset();
  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_THAT(log.events, ElementsAre("destructor collect returns 0"));
  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_THAT(log.events, ElementsAre("destructor collect returns 0", "~orphan"));
}

// traverse throws on demand; then collect() is abandoned and nothing changes.
struct throwing_node {
  static inline bool fail = false;
  explicit throwing_node(event_log& log) : log_(&log) {}
  ~throwing_node() { log_->add("~throwing"); }
  std::shared_ptr<throwing_node> next;
  template <class V>
  void traverse(V& visit) {
    if (fail) throw std::runtime_error("traverse failed");
    visit(next);
  }
  event_log* log_;
};

TEST(gc_weakrefs, a_throwing_traverse_abandons_the_collection_and_frees_nothing) {
  event_log log;
  auto [a, b] = make_cycle_of<throwing_node>(log);
  ref<throwing_node> ra(a, [&] { log.add("cb"); });
  a.reset();
  b.reset();
  throwing_node::fail = true;
  EXPECT_THROW(weakref::gc::collect(), std::runtime_error);
  throwing_node::fail = false;
  EXPECT_TRUE(log.events.empty());
  ASSERT_TRUE(ra.alive());
  EXPECT_NE(ra()->next, nullptr);
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_THAT(sorted(log.events), ElementsAre("cb", "~throwing", "~throwing"));
}

// traverse visits an edge twice: more internal references than owners.
struct overcounting_node {
  std::shared_ptr<overcounting_node> next;
  template <class V>
  void traverse(V& visit) {
    visit(next);
    visit(next);
  }
};

// The count goes negative, which a concurrent move can cause too (below): not an error, and
// the object is kept as if owned from outside.
TEST(gc_weakrefs, an_object_a_traverse_reports_more_edges_to_than_it_has_owners_is_kept) {
  auto a = weakref::make_shared<overcounting_node>();
  auto b = weakref::make_shared<overcounting_node>();
  a->next = b;
  ref<overcounting_node> rb(b);
  b.reset();  // b's only owner is a's edge, which a's traverse reports twice
  EXPECT_EQ(weakref::gc::collect(), 0u);
  EXPECT_TRUE(rb.alive());
  EXPECT_EQ(a->next, rb());
}

// Two live objects whose edges move while a collection traverses them: what another thread
// may do between two traverses (each under its object's lock, as gc.hpp asks), done here by
// the first traverse, so that it happens every time. That traverse reports its edges, then
// moves them to its twin, which reports them again: each moved target is subtracted twice.
struct moving_node {
  static inline bool move = false;
  std::vector<std::shared_ptr<gc_node>> edges;
  moving_node* twin = nullptr;
  bool traversed = false;
  template <class V>
  void traverse(V& visit) {
    visit(edges);
    traversed = true;
    if (!move || twin->traversed) return;
    for (auto& e : edges) twin->edges.push_back(std::move(e));
    edges.clear();
  }
};

TEST(gc_weakrefs, an_edge_moved_between_live_objects_during_a_collection_is_not_an_error) {
  event_log log;
  auto x = weakref::make_shared<moving_node>();
  auto y = weakref::make_shared<moving_node>();
  x->twin = y.get();
  y->twin = x.get();
  // Owned only by the edges; one in each object, so whichever is traversed first moves one.
  auto target_x = make_node(log, "target_x");
  auto target_y = make_node(log, "target_y");
  ref<gc_node> rx(target_x);
  ref<gc_node> ry(target_y);
  x->edges.push_back(std::move(target_x));
  y->edges.push_back(std::move(target_y));
  auto collect_moving = [&](auto&& run) {
    x->traversed = y->traversed = false;
    moving_node::move = true;
    run();
    moving_node::move = false;
  };
  collect_moving([] { EXPECT_EQ(weakref::gc::collect(), 0u); });
  EXPECT_TRUE(rx.alive());
  EXPECT_TRUE(ry.alive());
  EXPECT_EQ(x->edges.size() + y->edges.size(), 2u);
  // The introspection queries subtract the same way.
  collect_moving([] { EXPECT_TRUE(weakref::gc::find_garbage().objects.empty()); });
  EXPECT_EQ(weakref::gc::collect(), 0u);
  EXPECT_TRUE(log.events.empty());
  x.reset();
  y.reset();
  EXPECT_THAT(sorted(log.events), ElementsAre("~target_x", "~target_y"));
}

TEST(gc_weakrefs, a_callback_that_throws_goes_to_the_unraisable_hook_and_the_rest_still_run) {
  unraisable_log unraisable;
  event_log log;
  auto a = make_node(log, "a");
  a->next = a;
  ref<gc_node> first(a, [&] { log.add("first"); });
  ref<gc_node> second(a, [] { throw std::runtime_error("boom"); });
  a.reset();
  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_THAT(log.events, ElementsAre("first", "~a"));
  EXPECT_THAT(unraisable.entries, ElementsAre("weakref callback: boom"));
}

}  // namespace
