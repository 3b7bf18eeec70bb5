// Tests for the collector's introspection: get_referents, get_referrers, why_alive /
// explain_alive, to_dot and find_garbage ("why is this still alive?").
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/alongside.hpp"
#include "support/gc_nodes.hpp"
#include "support/tracked.hpp"
#include "support/unraisable_log.hpp"
#include "weakref/gc.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_key_map.hpp"

// A scene graph with readable type names (not in an anonymous namespace).
namespace scene_graph {
struct mesh {};
struct node {
  std::shared_ptr<node> parent;
  std::vector<std::shared_ptr<node>> children;
  std::shared_ptr<mesh> geometry;
  template <class V>
  void traverse(V& visit) {
    visit("parent", parent);
    visit("children", children);
    visit("mesh", geometry);
  }
};
struct scene {
  std::vector<std::shared_ptr<node>> children;
  template <class V>
  void traverse(V& visit) {
    visit("children", children);
  }
};
struct annotation {
  std::shared_ptr<node> subject;
  template <class V>
  void traverse(V& visit) {
    visit("subject", subject);
  }
};
}  // namespace scene_graph

namespace {

using scene_graph::annotation;
using scene_graph::mesh;
using scene_graph::node;
using scene_graph::scene;

bool same(const std::shared_ptr<const void>& a, const std::shared_ptr<const void>& b) {
  return !a.owner_before(b) && !b.owner_before(a);
}
template <class T>
bool same(const std::shared_ptr<const void>& a, const std::shared_ptr<T>& b) {
  return same(a, std::shared_ptr<const void>(b));
}

class GcIntrospection : public testing::Test {
 protected:
  void SetUp() override { weakref::gc::collect(); }

  // scene -> children[0..3]; children[3] -> children[0] = leaf; leaf -> mesh; leaf.parent back.
  void build() {
    world = weakref::make_shared<scene>();
    for (int i = 0; i < 4; ++i) world->children.push_back(weakref::make_shared<node>());
    leaf = weakref::make_shared<node>();
    geometry = std::make_shared<mesh>();  // untracked
    leaf->geometry = geometry;
    leaf->parent = world->children[3];
    world->children[3]->children.push_back(leaf);
  }
  std::shared_ptr<scene> world;
  std::shared_ptr<node> leaf;
  std::shared_ptr<mesh> geometry;
};

TEST_F(GcIntrospection, ReferentsAreEveryStrongReferenceInVisitOrder) {
  build();
  auto referents = weakref::gc::get_referents(leaf);
  ASSERT_EQ(referents.size(), 2u);
  EXPECT_TRUE(same(referents[0], world->children[3]));  // "parent"
  EXPECT_TRUE(same(referents[1], geometry));            // "mesh": untracked, still listed

  EXPECT_EQ(weakref::gc::get_referents(world).size(), 4u);
  EXPECT_TRUE(weakref::gc::get_referents(geometry).empty());  // no traverse
  EXPECT_TRUE(weakref::gc::get_referents(std::shared_ptr<node>()).empty());
}

TEST_F(GcIntrospection, ReferentsOfAnUntrackedObjectOfATraversableType) {
  auto plain = std::make_shared<node>();  // std::make_shared: not tracked
  plain->geometry = std::make_shared<mesh>();
  ASSERT_FALSE(weakref::gc::is_tracked(plain));
  auto referents = weakref::gc::get_referents(plain);
  ASSERT_EQ(referents.size(), 1u);
  EXPECT_TRUE(same(referents[0], plain->geometry));
}

TEST_F(GcIntrospection, ReferentsThroughTheDynamicType) {
  // A tracked object seen through std::shared_ptr<const void> (get_objects()) is visited by
  // the traverse of the type it was made as.
  build();
  std::shared_ptr<const void> erased = leaf;
  EXPECT_EQ(weakref::gc::get_referents(erased).size(), 2u);
}

struct map_holder {
  weakref::weak_key_map<gc_node, std::shared_ptr<gc_node>> meta;
  template <class V>
  void traverse(V& visit) {
    visit(meta);
  }
};

TEST_F(GcIntrospection, ReferentsIncludeWeakContainerValuesButNotWeakReferences) {
  event_log log;
  auto h = std::make_shared<map_holder>();
  auto key = make_node(log, "key");
  auto value = make_node(log, "value");
  h->meta[key] = value;
  auto with_ref = make_node(log, "with_ref");
  with_ref->held = weakref::ref<gc_node>(key);

  auto referents = weakref::gc::get_referents(h);
  ASSERT_EQ(referents.size(), 1u);
  EXPECT_TRUE(same(referents[0], value));
  EXPECT_TRUE(weakref::gc::get_referents(with_ref).empty());
}

TEST_F(GcIntrospection, ReferrersAreTheTrackedHoldersEachOnce) {
  build();
  auto referrers = weakref::gc::get_referrers(leaf);
  ASSERT_EQ(referrers.size(), 1u);
  EXPECT_TRUE(same(referrers[0], world->children[3]));

  auto of_mesh = weakref::gc::get_referrers(geometry);  // an untracked target
  ASSERT_EQ(of_mesh.size(), 1u);
  EXPECT_TRUE(same(of_mesh[0], leaf));

  leaf->children = {leaf, leaf};  // two edges and a self-reference: listed once
  referrers = weakref::gc::get_referrers(leaf);
  EXPECT_EQ(referrers.size(), 2u);
  EXPECT_TRUE(
      std::any_of(referrers.begin(), referrers.end(), [&](auto& r) { return same(r, leaf); }));
  leaf->children.clear();
}

// A holder is found by ownership, as CPython finds it by identity: through a weak container's
// value, through an aliasing shared_ptr into the object, but not through a weak reference or
// another object of the same type.
TEST_F(GcIntrospection, ReferrersAreFoundThroughWeakContainerValuesAndAliases) {
  event_log log;
  auto target = make_node(log, "target");
  auto by_map = weakref::make_shared<map_holder>();
  auto key = make_node(log, "key");
  by_map->meta[key] = target;
  auto by_alias = make_node(log, "by_alias");
  by_alias->kids.push_back(std::shared_ptr<gc_node>(target, target.get()));
  auto by_ref = make_node(log, "by_ref");
  by_ref->held = weakref::ref<gc_node>(target);
  auto by_other = make_node(log, "by_other");
  by_other->next = make_node(log, "other");

  auto referrers = weakref::gc::get_referrers(target);
  ASSERT_EQ(referrers.size(), 2u);
  auto listed = [&](const auto& holder) {
    return std::any_of(referrers.begin(), referrers.end(),
                       [&](auto& r) { return same(r, holder); });
  };
  EXPECT_TRUE(listed(by_map));
  EXPECT_TRUE(listed(by_alias));
}

TEST_F(GcIntrospection, WhyAliveIsJustTheObjectWhenItHasOutsideOwners) {
  build();
  auto extra = leaf;  // an owner besides the argument
  {
    auto chain = weakref::gc::why_alive(leaf);  // holds what it names: let it go after
    ASSERT_EQ(chain.size(), 1u);
    EXPECT_TRUE(same(chain[0], leaf));
  }
  auto explained = weakref::gc::explain_alive(leaf);
  EXPECT_EQ(explained.root_owners, 1);
  EXPECT_EQ(explained.str(), "root (scene_graph::node)");
}

TEST_F(GcIntrospection, WhyAliveIsTheShortestChainFromARoot) {
  build();
  {
    auto chain = weakref::gc::why_alive(leaf);  // the argument `leaf` does not count
    ASSERT_EQ(chain.size(), 3u);
    EXPECT_TRUE(same(chain[0], world));
    EXPECT_TRUE(same(chain[1], world->children[3]));
    EXPECT_TRUE(same(chain[2], leaf));
  }

  auto explained = weakref::gc::explain_alive(leaf);
  EXPECT_EQ(explained.str(),
            "root (scene_graph::scene) --children[3]--> scene_graph::node --children[0]--> "
            "scene_graph::node");
  EXPECT_EQ(explained.root_owners, 1);  // `world`
  explained = {};

  world->children[0]->children.push_back(leaf);  // a second path, as short
  world->children.push_back(leaf);               // and a shorter one
  EXPECT_EQ(weakref::gc::why_alive(leaf).size(), 2u);
  EXPECT_EQ(weakref::gc::explain_alive(leaf).str(),
            "root (scene_graph::scene) --children[4]--> scene_graph::node");
}

TEST_F(GcIntrospection, WhyAliveOfAnUntrackedObjectEndsAtItsTrackedHolder) {
  build();
  EXPECT_EQ(weakref::gc::explain_alive(geometry).str(),
            "root (scene_graph::node) --mesh--> scene_graph::mesh");  // `leaf` is a root
  leaf.reset();
  EXPECT_EQ(weakref::gc::explain_alive(geometry).links.size(), 4u);

  auto alone = std::make_shared<mesh>();
  auto copy = alone;
  EXPECT_EQ(weakref::gc::explain_alive(alone).str(), "root (scene_graph::mesh)");
  copy.reset();
  EXPECT_TRUE(weakref::gc::why_alive(alone).empty());  // only the argument
}

TEST_F(GcIntrospection, WhyAliveIsEmptyWhenOnlyCyclesKeepIt) {
  event_log log;
  auto [a, b] = make_pair_cycle(log, "a", "b");
  weakref::ref<gc_node> rb(b);
  b.reset();
  EXPECT_EQ(weakref::gc::why_alive(b).size(), 0u);  // empty pointer
  auto held_b = rb.lock();
  {
    auto chain = weakref::gc::why_alive(held_b);  // held_b is the argument
    ASSERT_EQ(chain.size(), 2u);                  // a (held by `a`) -> b
    EXPECT_TRUE(same(chain[0], a));
  }
  a.reset();
  EXPECT_TRUE(weakref::gc::why_alive(held_b).empty());
  EXPECT_EQ(weakref::gc::explain_alive(held_b).str(),
            "nothing but cycles (and the query's argument) keeps it alive: collect() frees it");
  held_b.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);  // before `log` goes
}

TEST_F(GcIntrospection, WhyAliveFollowsAnEphemeronFromItsKey) {
  weakref::weak_key_map<node, std::shared_ptr<annotation>> notes;
  build();
  auto note = weakref::make_shared<annotation>();
  auto orphan = weakref::make_shared<node>();
  note->subject = orphan;
  notes[world->children[1]] = note;  // children[1] keeps `note` through the map
  weakref::ref<node> r(orphan);
  orphan.reset();
  note.reset();

  auto explained = weakref::gc::explain_alive(r.lock());
  ASSERT_EQ(explained.links.size(), 4u);
  EXPECT_EQ(explained.str(),
            "root (scene_graph::scene) --children[1]--> scene_graph::node --[value in "
            "weakref::weak_key_map<scene_graph::node, std::shared_ptr<scene_graph::annotation> "
            ">]--> scene_graph::annotation --subject--> scene_graph::node");
}

TEST_F(GcIntrospection, WhyAliveNamesAMapNoTrackedObjectOwns) {
  weakref::weak_key_map<mesh, std::shared_ptr<node>> by_mesh;  // an untracked key
  auto key = weakref::make_shared<mesh>();
  auto held = weakref::make_shared<node>();
  by_mesh[key] = held;
  weakref::ref<node> r(held);
  held.reset();
  auto explained = weakref::gc::explain_alive(r.lock());
  ASSERT_EQ(explained.links.size(), 1u);
  EXPECT_EQ(explained.root_owners, 0);
  EXPECT_EQ(explained.root_map,
            "weakref::weak_key_map<scene_graph::mesh, "
            "std::shared_ptr<scene_graph::node> >");
}

TEST_F(GcIntrospection, ToDotDrawsTheHoldersTheRootAndTheChain) {
  build();
  auto dot = weakref::gc::to_dot(leaf);
  EXPECT_EQ(dot.rfind("digraph retention {", 0), 0u);
  EXPECT_EQ(dot.back(), '\n');
  EXPECT_NE(dot.find("scene_graph::scene\\nroot: 1 outside owner\""), std::string::npos) << dot;
  EXPECT_NE(dot.find("scene_graph::node\\n(queried)"), std::string::npos) << dot;
  EXPECT_NE(dot.find("[label=\"children[3]\", color="), std::string::npos) << dot;  // chain
  EXPECT_NE(dot.find("[label=\"parent\"]"), std::string::npos) << dot;  // the cycle back
  // Objects that do not hold the leaf are left out: 3 nodes, 3 edges.
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (auto at = dot.find(what); at != std::string::npos; at = dot.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count(" -> "), 3u) << dot;
  EXPECT_EQ(count("[label=\"scene_graph::"), 3u) << dot;
}

TEST_F(GcIntrospection, ToDotStopsAtMaxNodes) {
  auto target = weakref::make_shared<node>();
  std::vector<std::shared_ptr<node>> holders;
  for (int i = 0; i < 10; ++i) {
    holders.push_back(weakref::make_shared<node>());
    holders.back()->children.push_back(target);
  }
  auto dot = weakref::gc::to_dot(target, 4);
  EXPECT_NE(dot.find("more holders not shown"), std::string::npos);
  std::size_t nodes = 0;
  for (auto at = dot.find("[label=\"scene_graph::"); at != std::string::npos;
       at = dot.find("[label=\"scene_graph::", at + 1)) {
    ++nodes;
  }
  EXPECT_EQ(nodes, 4u);
}

TEST_F(GcIntrospection, FindGarbageReportsCyclesWithoutFreeingThem) {
  event_log log;
  {
    auto [a, b] = make_pair_cycle(log, "a", "b");
    auto c = make_node(log, "c");
    c->next = c;  // a second group: a self-cycle
    auto tail = make_node(log, "tail");
    a->kids.push_back(tail);  // hangs off the first cycle
  }
  auto kept = make_node(log, "kept");
  {
    auto report = weakref::gc::find_garbage();
    ASSERT_EQ(report.objects.size(), 4u);
    ASSERT_EQ(report.groups.size(), 2u);
    std::vector<std::size_t> sizes{report.groups[0].size(), report.groups[1].size()};
    std::sort(sizes.begin(), sizes.end());
    EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 3}));
    EXPECT_EQ(report.edges.size(), 4u);  // a->b, b->a, a->tail, c->c
    std::vector<std::string> names;
    for (auto& e : report.edges) names.push_back(e.name);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"kids[0]", "next", "next", "next"}));
    auto text = report.str();
    EXPECT_EQ(text.rfind("4 garbage objects in 2 groups\n", 0), 0u) << text;
    EXPECT_NE(text.find("gc_node --next--> #"), std::string::npos) << text;
    EXPECT_NE(report.to_dot().find("subgraph cluster_1"), std::string::npos);
    EXPECT_TRUE(log.events.empty());        // nothing freed
    EXPECT_EQ(weakref::gc::collect(), 0u);  // the report holds them
  }
  EXPECT_EQ(weakref::gc::collect(), 4u);
  EXPECT_TRUE(weakref::gc::find_garbage().empty());
}

TEST_F(GcIntrospection, FindGarbageShowsAnEphemeronEdgeFromItsKey) {
  event_log log;
  weakref::weak_key_map<gc_node, std::shared_ptr<gc_node>> meta;
  {
    auto key = make_node(log, "key");
    auto value = make_node(log, "value");
    value->next = key;
    meta[key] = value;
  }
  auto report = weakref::gc::find_garbage();
  ASSERT_EQ(report.objects.size(), 2u);
  ASSERT_EQ(report.groups.size(), 1u);
  ASSERT_EQ(report.edges.size(), 2u);
  auto text = report.str();
  EXPECT_NE(text.find("--[value in weakref::weak_key_map<gc_node, std::shared_ptr<gc_node> >]--> "),
            std::string::npos)
      << text;
}

// A traverse that collects (a query must not deadlock on it).
struct collecting {
  std::vector<std::size_t>* results;
  template <class V>
  void traverse(V&) {
    results->push_back(weakref::gc::collect());
  }
};

// A traverse that runs a query (which must throw, not deadlock).
struct querying {
  std::vector<std::string>* errors;
  template <class V>
  void traverse(V&) {
    try {
      weakref::gc::find_garbage();
    } catch (const std::logic_error& e) {
      errors->push_back(e.what());
    }
  }
};

TEST_F(GcIntrospection, QueriesFromCallbacksDuringACollectionWork) {
  // CPython allows gc.get_referrers() in weakref callbacks and gc callbacks; so does this.
  event_log log;
  auto [a, b] = make_pair_cycle(log, "a", "b");
  auto survivor = make_node(log, "survivor");
  std::vector<std::size_t> referrer_counts;
  std::size_t garbage_seen = 99;
  weakref::ref<gc_node> r(a, [&] {
    referrer_counts.push_back(weakref::gc::get_referrers(survivor).size());
    garbage_seen = weakref::gc::find_garbage().objects.size();  // a and b are condemned
  });
  auto id = weakref::gc::add_callback([&](weakref::gc::phase p, const auto&) {
    if (p == weakref::gc::phase::stop) {
      referrer_counts.push_back(weakref::gc::get_referrers(survivor).size());
    }
  });
  a.reset();
  b.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
  weakref::gc::remove_callback(id);
  EXPECT_EQ(referrer_counts, (std::vector<std::size_t>{0, 0}));
  EXPECT_EQ(garbage_seen, 0u);
}

TEST_F(GcIntrospection, QueriesFromATraverseThrowAndCollectFromAQueryReturnsZero) {
  std::vector<std::string> errors;
  {
    auto q = weakref::make_shared<querying>(querying{&errors});
    weakref::gc::collect();  // its traverse runs under the collector's lock
    EXPECT_FALSE(errors.empty());
    for (auto& e : errors) EXPECT_NE(e.find("introspection from a traverse"), std::string::npos);
    errors.clear();
    weakref::gc::why_alive(q);  // and under a query's
    EXPECT_FALSE(errors.empty());
  }

  std::vector<std::size_t> inner;
  auto c = weakref::make_shared<collecting>(collecting{&inner});
  weakref::gc::get_referrers(c);
  ASSERT_FALSE(inner.empty());  // the traverse ran, and each collect() from it gave 0
  EXPECT_EQ(std::count(inner.begin(), inner.end(), 0u), static_cast<long>(inner.size()));
}

// get_referents runs no analysis, but its traverse is a query's all the same: a query from it
// throws (it would run the same traverse again, inside itself) and a collect() returns 0.
struct counted_querying {
  int calls = 0;
  std::vector<std::string> errors;
  template <class V>
  void traverse(V&) {
    ++calls;
    try {
      weakref::gc::find_garbage();  // would run this traverse again
    } catch (const std::logic_error& e) {
      errors.push_back(e.what());
    }
  }
};

TEST_F(GcIntrospection, GetReferentsRunsItsTraverseAsAQueryDoes) {
  auto q = weakref::make_shared<counted_querying>();
  weakref::gc::get_referents(q);
  EXPECT_EQ(q->calls, 1);
  ASSERT_EQ(q->errors.size(), 1u);
  EXPECT_NE(q->errors[0].find("introspection from a traverse"), std::string::npos);

  std::vector<std::size_t> inner;
  auto c = weakref::make_shared<collecting>(collecting{&inner});
  event_log log;
  {
    auto garbage = make_node(log, "garbage");
    garbage->next = garbage;
  }
  weakref::gc::get_referents(c);
  EXPECT_EQ(inner, (std::vector<std::size_t>{0}));
  EXPECT_EQ(weakref::gc::collect(), 1u);
}

// get_referents and get_referrers read a weak_key_map's value while holding its key. A key whose
// last other owner goes meanwhile (on another thread) dies once the traverse has returned, not
// inside it, under the lock a traverse may take.
int map_owner_traversing = 0;
int key_died_traversing = -1;
bool key_query_threw = false;
struct map_key {
  ~map_key() {
    key_died_traversing = map_owner_traversing;
    try {
      (void)weakref::gc::find_garbage();  // an ordinary death: queries are allowed
    } catch (const std::logic_error&) {
      key_query_threw = true;
    }
  }
};
std::atomic<int> value_phase{0};
struct pausing_value {
  std::shared_ptr<mesh> geometry;
  template <class V>
  void traverse(V& visit) {
    if (value_phase.load() == 1) {  // the first read: the other thread drops the key meanwhile
      value_phase.store(2);
      while (value_phase.load() != 3) std::this_thread::yield();
    }
    visit(geometry);
  }
};
struct map_owner {
  weakref::weak_key_map<map_key, pausing_value> map;
  template <class V>
  void traverse(V& visit) {
    ++map_owner_traversing;
    visit(map);
    --map_owner_traversing;
  }
};

TEST_F(GcIntrospection, AKeyHeldWhileAQueryReadsItsValueDiesAfterTheTraverse) {
  auto run = [](auto query) {
    auto owner = weakref::make_shared<map_owner>();
    auto key = weakref::make_shared<map_key>();
    owner->map[key] = pausing_value{std::make_shared<mesh>()};
    key_died_traversing = -1;
    key_query_threw = false;
    value_phase.store(1);
    std::thread dropper([&] {
      while (value_phase.load() != 2) std::this_thread::yield();
      key.reset();
      value_phase.store(3);
    });
    query(owner);
    dropper.join();
    return key_died_traversing;  // -1: alive; 0: died outside the owner's traverse
  };
  EXPECT_EQ(run([](const auto& owner) { weakref::gc::get_referents(owner); }), 0);
  EXPECT_FALSE(key_query_threw);  // after get_referents' traverse: an ordinary death
  // (get_referrers' walk lets go of it as of the objects it held: a query there throws.)
  EXPECT_EQ(run([](const auto& owner) { weakref::gc::get_referrers(owner); }), 0);
}

// get_referrers walks each thread's tracked objects in chunks (of 32), resuming after the last
// object of each: holders on both sides of every boundary are found, each once.
TEST_F(GcIntrospection, ReferrersAcrossManyObjectsAreEachFoundOnce) {
  event_log log;
  auto target = make_node(log, "target");
  std::vector<std::shared_ptr<gc_node>> nodes;
  for (int i = 0; i < 2000; ++i) {
    nodes.push_back(make_node(log, "n"));
    if (i % 7 == 0 || i % 32 == 0 || i % 32 == 31) nodes.back()->next = target;
  }
  std::size_t expected = 0;
  for (auto& n : nodes) expected += n->next != nullptr;
  auto referrers = weakref::gc::get_referrers(target);
  EXPECT_EQ(referrers.size(), expected);
  std::set<const void*> distinct;
  for (auto& r : referrers) distinct.insert(r.get());
  EXPECT_EQ(distinct.size(), expected);
  for (auto& r : referrers) {
    EXPECT_EQ(static_cast<const gc_node*>(r.get())->next, target);
  }
}

// A traverse that throws while `armed`.
struct throwing_traverse {
  std::shared_ptr<throwing_traverse> other;
  bool* armed;
  template <class V>
  void traverse(V& visit) {
    if (*armed) throw std::runtime_error("traverse failed");
    visit(other);
  }
};

// A query whose traverse throws lets go of every object it held, and of its place among the
// analyses dropping holds: the next query neither waits forever nor counts those holds as owners.
TEST_F(GcIntrospection, AQueryWhoseTraverseThrowsLetsGoOfItsHolds) {
  bool armed = false;
  auto a = weakref::make_shared<throwing_traverse>(throwing_traverse{nullptr, &armed});
  auto b = weakref::make_shared<throwing_traverse>(throwing_traverse{a, &armed});
  armed = true;
  EXPECT_THROW(weakref::gc::get_referrers(a), std::runtime_error);
  EXPECT_THROW(weakref::gc::why_alive(a), std::runtime_error);
  armed = false;
  EXPECT_EQ(a.use_count(), 2);  // the local and b's edge
  EXPECT_EQ(b.use_count(), 1);
  auto referrers = weakref::gc::get_referrers(a);
  ASSERT_EQ(referrers.size(), 1u);
  EXPECT_TRUE(same(referrers[0], b));
  referrers.clear();
  auto chain = weakref::gc::why_alive(a);  // the argument is not an owner: b holds it
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_TRUE(same(chain[0], b));
}

// A std::shared_ptr<const void> argument (what get_objects, get_referrers and why_alive return)
// binds to the queries' parameter without a copy: one owner is discounted, not two (before,
// an object held from outside answered "nothing keeps it", with no root in its graph).
TEST_F(GcIntrospection, AConstVoidArgumentIsDiscountedOnce) {
  build();
  std::shared_ptr<const void> leaf_as_void = leaf;
  leaf.reset();  // held by world's child and leaf_as_void
  auto chain = weakref::gc::why_alive(leaf_as_void);
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_TRUE(same(chain[0], world));
  chain.clear();
  std::shared_ptr<const void> world_as_void = world;  // world: two owners outside
  EXPECT_NE(weakref::gc::to_dot(world_as_void).find("root: 1 outside"), std::string::npos);
  auto explained = weakref::gc::explain_alive(world_as_void);
  ASSERT_EQ(explained.links.size(), 1u);
  EXPECT_EQ(explained.root_owners, 1);  // `world` (the argument is not counted)
  std::shared_ptr<const void> untracked = geometry;
  EXPECT_EQ(weakref::gc::explain_alive(untracked).root_owners, 1);  // `geometry`
}

// Two threads walking for get_referrers without pause overlap all the time, so `releasing` is
// never zero: a query waiting for it got through only in a gap between walks (100 queries took
// 29 s here, against 0.05 s). Walks now park between chunks while a query waits, keeping one
// hold each, which the query must not count as an owner (without the discount, that object
// reads as a root: a shorter chain, or a root owner too many, in 2 runs of 3).
TEST_F(GcIntrospection, QueriesGetThroughOverlappingReferrerWalks) {
  build();
  std::vector<std::shared_ptr<node>> many(3000);  // several chunks per walk
  for (auto& object : many) object = weakref::make_shared<node>();
  auto scene_owner = world;  // world: one owner besides the argument
  const auto start = std::chrono::steady_clock::now();
  test_support::run_alongside(
      2, [&] { EXPECT_TRUE(weakref::gc::get_referrers(many[0]).empty()); }, 100,
      [&](int) {
        EXPECT_EQ(weakref::gc::why_alive(leaf).size(), 3u);
        EXPECT_EQ(weakref::gc::explain_alive(world).root_owners, 1);
      },
      8);
  // Not a speed goal: a bound on starvation, hundreds of times what the queries need.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

}  // namespace
