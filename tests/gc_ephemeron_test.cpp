// Tests for weak_key_map as a table of ephemerons under weakref::gc::collect(): a value keeps
// things alive only while its key is reachable from outside the value and its map is alive.
// CPython's WeakKeyDictionary leaks a key its value refers to (gh-88846); these maps do not.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "support/gc_nodes.hpp"
#include "support/tracked.hpp"
#include "support/unraisable_log.hpp"
#include "weakref/gc.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_key_map.hpp"

namespace {

// Deaths whose order across objects is not part of the contract, in a fixed order.
std::vector<std::string> sorted(std::vector<std::string> events) {
  std::sort(events.begin(), events.end());
  return events;
}

// A side-table value that may own objects, the keys included.
struct info {
  std::shared_ptr<gc_node> owner;
  std::vector<std::shared_ptr<gc_node>> others;
  template <class V>
  void traverse(V& visit) {
    visit("owner", owner);
    visit("others", others);
  }
};

using meta_map = weakref::weak_key_map<gc_node, info>;

// Which values make a weak_key_map a table of ephemerons.
struct opaque {
  std::shared_ptr<gc_node> owner;  // no traverse: the collector cannot see it
};
static_assert(weakref::detail::gc_holds_edges<info>());
static_assert(weakref::detail::gc_holds_edges<std::shared_ptr<gc_node>>());
static_assert(weakref::detail::gc_holds_edges<std::vector<std::shared_ptr<int>>>());
static_assert(weakref::detail::gc_holds_edges<std::optional<std::shared_ptr<int>>>());
static_assert(weakref::detail::gc_holds_edges<std::pair<int, std::shared_ptr<int>>>());
static_assert(weakref::detail::gc_holds_edges<std::variant<int, std::shared_ptr<int>>>());
static_assert(weakref::detail::gc_holds_edges<std::map<int, std::shared_ptr<int>>>());
static_assert(!weakref::detail::gc_holds_edges<int>());
static_assert(!weakref::detail::gc_holds_edges<std::string>());
static_assert(!weakref::detail::gc_holds_edges<std::weak_ptr<int>>());
static_assert(!weakref::detail::gc_holds_edges<weakref::ref<int>>());
static_assert(!weakref::detail::gc_holds_edges<std::vector<int>>());
static_assert(!weakref::detail::gc_holds_edges<opaque>());
static_assert(std::is_base_of_v<weakref::detail::gc_ephemeron_table, meta_map>);
static_assert(!std::is_base_of_v<weakref::detail::gc_ephemeron_table,
                                 weakref::weak_key_map<gc_node, opaque>>);

class GcEphemeron : public testing::Test {
 protected:
  void SetUp() override { weakref::gc::collect(); }  // garbage of earlier tests
  event_log log;
};

TEST_F(GcEphemeron, ValueOwningItsKeyNoLongerKeepsIt) {
  meta_map meta;
  auto widget = make_node(log, "w");
  meta[widget].owner = widget;  // CPython's leak: meta[obj] = Info(owner=obj)
  weakref::ref<gc_node> r(widget);
  widget.reset();
  ASSERT_TRUE(r.alive());  // reference counting alone cannot free it

  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_EQ(log.events, std::vector<std::string>{"~w"});
  EXPECT_FALSE(r.alive());
  EXPECT_EQ(meta.size(), 0u);
}

TEST_F(GcEphemeron, ValueTheCollectorCannotSeeIntoKeepsItsKey) {
  weakref::weak_key_map<gc_node, opaque> meta;
  auto widget = make_node(log, "w");
  meta[widget].owner = widget;
  weakref::ref<gc_node> r(widget);
  widget.reset();

  EXPECT_EQ(weakref::gc::collect(), 0u);
  EXPECT_TRUE(r.alive());
  EXPECT_EQ(meta.size(), 1u);
  meta.clear();  // the only way out, as in CPython
  EXPECT_FALSE(r.alive());
}

TEST_F(GcEphemeron, KeyHeldFromOutsideKeepsItsValueAndWhatTheValueOwns) {
  meta_map meta;
  auto widget = make_node(log, "w");
  auto only_in_value = make_node(log, "x");
  weakref::ref<gc_node> x(only_in_value);
  meta[widget].owner = widget;
  meta[widget].others.push_back(std::move(only_in_value));

  EXPECT_EQ(weakref::gc::collect(), 0u);
  EXPECT_TRUE(x.alive());
  ASSERT_EQ(meta.size(), 1u);
  EXPECT_EQ(meta.at(widget).owner, widget);
  EXPECT_TRUE(log.events.empty());

  widget.reset();
  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_EQ(sorted(log.events), (std::vector<std::string>{"~w", "~x"}));
  EXPECT_FALSE(x.alive());
}

TEST_F(GcEphemeron, TwoEntriesWhoseValuesOwnEachOthersKeys) {
  meta_map meta;
  auto a = make_node(log, "a");
  auto b = make_node(log, "b");
  meta[a].owner = b;
  meta[b].owner = a;
  a.reset();
  b.reset();

  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_EQ(sorted(log.events), (std::vector<std::string>{"~a", "~b"}));
  EXPECT_EQ(meta.size(), 0u);
}

TEST_F(GcEphemeron, AChainOfEntriesIsKeptByItsFirstKeyAndFreedWithIt) {
  // value(k0) owns k1, value(k1) owns k2, ...: marking must iterate to a fixpoint, and in
  // any order of the entries (k3's entry comes first in the map).
  meta_map meta;
  std::vector<std::shared_ptr<gc_node>> keys;
  for (int i = 0; i < 4; ++i) keys.push_back(make_node(log, "k" + std::to_string(i)));
  meta[keys[3]].owner = keys[3];
  for (int i = 2; i >= 0; --i) meta[keys[i]].owner = keys[i + 1];
  std::vector<weakref::ref<gc_node>> refs(keys.begin(), keys.end());
  auto first = keys[0];
  keys.clear();

  EXPECT_EQ(weakref::gc::collect(), 0u);
  for (auto& r : refs) EXPECT_TRUE(r.alive());
  first.reset();  // k0 dies at once; its entry, not yet dropped, still holds k1
  EXPECT_FALSE(refs[0].alive());
  EXPECT_TRUE(refs[1].alive());
  EXPECT_EQ(weakref::gc::collect(), 3u);  // a dead key's value is garbage too
  for (auto& r : refs) EXPECT_FALSE(r.alive());
  EXPECT_EQ(meta.size(), 0u);
}

TEST_F(GcEphemeron, SameKeyInTwoMaps) {
  meta_map first, second;
  auto widget = make_node(log, "w");
  first[widget].owner = widget;
  second[widget].owner = widget;
  widget.reset();

  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_EQ(first.size(), 0u);
  EXPECT_EQ(second.size(), 0u);
}

TEST_F(GcEphemeron, KeyOfOneMapOwnedByAValueInAnotherIsKeptWhileThatKeyIs) {
  meta_map first, second;
  auto a = make_node(log, "a");
  auto b = make_node(log, "b");
  first[a].owner = b;  // a keeps b through `first`
  second[b].owner = b;
  weakref::ref<gc_node> rb(b);
  b.reset();

  EXPECT_EQ(weakref::gc::collect(), 0u);
  EXPECT_TRUE(rb.alive());
  a.reset();  // a dies at once; its entry in `first`, not yet dropped, still holds b
  EXPECT_TRUE(rb.alive());
  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_FALSE(rb.alive());
}

// A tracked object with a side table of its own.
struct holder {
  explicit holder(event_log& log) : log_(&log) {}
  ~holder() { log_->add("~holder"); }
  std::shared_ptr<holder> next;
  meta_map meta;
  template <class V>
  void traverse(V& visit) {
    visit("next", next);
    visit("meta", meta);
  }
  event_log* log_;
};

TEST_F(GcEphemeron, MapOwnedByGarbageReleasesItsValuesButNotItsLiveKeys) {
  auto [h1, h2] = make_cycle_of<holder>(log);
  auto key = make_node(log, "key");
  auto only_in_value = make_node(log, "x");
  weakref::ref<gc_node> x(only_in_value);
  h1->meta[key].owner = key;
  h1->meta[key].others.push_back(std::move(only_in_value));
  h1.reset();
  h2.reset();

  EXPECT_EQ(weakref::gc::collect(), 3u);  // the holders and x
  EXPECT_EQ(sorted(log.events), (std::vector<std::string>{"~holder", "~holder", "~x"}));
  EXPECT_FALSE(x.alive());
  EXPECT_EQ(key.use_count(), 1);  // its value let go of it
}

TEST_F(GcEphemeron, MapOwnedByALiveObjectKeepsTheValuesOfLiveKeysOnly) {
  auto owner = weakref::make_shared<holder>(log);
  auto kept = make_node(log, "kept");
  auto dropped = make_node(log, "dropped");
  owner->meta[kept].owner = kept;
  owner->meta[dropped].owner = dropped;
  dropped.reset();

  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_EQ(log.events, std::vector<std::string>{"~dropped"});
  EXPECT_EQ(owner->meta.size(), 1u);
  EXPECT_TRUE(owner->meta.contains(kept));
}

TEST_F(GcEphemeron, MapInsideAGarbageKeysValue) {
  // meta[a] holds a map whose entry's value owns a: both levels are ephemerons.
  weakref::weak_key_map<gc_node, std::shared_ptr<holder>> outer;
  auto a = make_node(log, "a");
  auto inner = weakref::make_shared<holder>(log);
  inner->meta[a].owner = a;
  outer[a] = inner;
  inner.reset();
  a.reset();

  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_EQ(sorted(log.events), (std::vector<std::string>{"~a", "~holder"}));
  EXPECT_EQ(outer.size(), 0u);
}

// A tracked value type: weak_key_map<K, std::shared_ptr<tracked value>>.
struct tracked_info {
  std::shared_ptr<gc_node> owner;
  template <class V>
  void traverse(V& visit) {
    visit("owner", owner);
  }
};

TEST_F(GcEphemeron, SharedPtrValuesToTrackedObjects) {
  weakref::weak_key_map<gc_node, std::shared_ptr<tracked_info>> meta;
  auto widget = make_node(log, "w");
  auto value = weakref::make_shared<tracked_info>();
  value->owner = widget;
  meta[widget] = value;
  weakref::ref<tracked_info> rv(value);
  value.reset();
  widget.reset();

  EXPECT_EQ(weakref::gc::collect(), 2u);
  EXPECT_FALSE(rv.alive());
  EXPECT_EQ(meta.size(), 0u);
}

TEST_F(GcEphemeron, CallbacksOnTheKeyRunAndRefsReadDeadFirst) {
  meta_map meta;
  auto widget = make_node(log, "w");
  meta[widget].owner = widget;
  weakref::ref<gc_node> plain(widget);
  std::vector<std::string> seen;
  weakref::ref<gc_node> watched(widget, [&] {
    seen.push_back(plain.alive() ? "alive" : "dead");
    seen.push_back(meta.contains(plain.lock()) ? "in meta" : "not in meta");
  });
  widget.reset();

  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_EQ(seen, (std::vector<std::string>{"dead", "not in meta"}));
  EXPECT_EQ(meta.size(), 0u);
}

struct with_ref {
  std::shared_ptr<gc_node> owner;
  weakref::ref<gc_node> watch;
  template <class V>
  void traverse(V& visit) {
    visit(owner);
    visit(watch);
  }
};

TEST_F(GcEphemeron, ARefInsideAGarbageKeysValueNeverCallsBack) {
  // The value is garbage with its key: a ref it holds is cleared without calling back, as
  // CPython does for a weakref held only by garbage.
  weakref::weak_key_map<gc_node, with_ref> meta;
  auto widget = make_node(log, "w");
  int calls = 0;
  meta[widget] = with_ref{widget, weakref::ref<gc_node>(widget, [&] { ++calls; })};
  widget.reset();

  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_EQ(calls, 0);
}

struct throwing {
  std::shared_ptr<gc_node> owner;
  bool armed = true;
  template <class V>
  void traverse(V& visit) {
    if (armed) throw std::runtime_error("traverse failed");
    visit(owner);
  }
};

TEST_F(GcEphemeron, ThrowingValueTraverseAbandonsTheCollection) {
  weakref::weak_key_map<gc_node, throwing> meta;
  auto widget = make_node(log, "w");
  meta[widget].owner = widget;
  weakref::ref<gc_node> r(widget);
  widget.reset();

  EXPECT_THROW(weakref::gc::collect(), std::runtime_error);
  EXPECT_TRUE(r.alive());
  EXPECT_EQ(meta.size(), 1u);
  for (auto& [key, value] : meta) value.armed = false;
  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_FALSE(r.alive());
}

TEST_F(GcEphemeron, MovedAndCopiedMapsAreEphemeronsToo) {
  meta_map original;
  auto a = make_node(log, "a");
  original[a].owner = a;
  meta_map moved(std::move(original));
  meta_map copied(moved);  // a second value owning a
  meta_map assigned;
  assigned = copied;  // a third
  a.reset();

  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_EQ(moved.size() + copied.size() + assigned.size(), 0u);
}

TEST_F(GcEphemeron, MapDestroyedBeforeTheCollectionIsForgotten) {
  auto a = make_node(log, "a");
  {
    meta_map meta;
    meta[a].owner = a;
  }
  weakref::ref<gc_node> r(a);
  EXPECT_EQ(weakref::gc::collect(), 0u);
  EXPECT_TRUE(r.alive());
  a.reset();
  EXPECT_FALSE(r.alive());
}

TEST_F(GcEphemeron, ValueDestructorThatDestroysTheMapDuringTheCollection) {
  // The key's death (after the collection released the value's edges) runs a destructor that
  // destroys the very map the collection walked.
  auto maps = std::make_shared<std::optional<meta_map>>(std::in_place);
  auto a = make_node(log, "a");
  (**maps)[a].owner = a;
  weakref::ref<gc_node> r(a, [maps] { maps->reset(); });
  a.reset();

  EXPECT_EQ(weakref::gc::collect(), 1u);
  EXPECT_FALSE(r.alive());
  EXPECT_FALSE(maps->has_value());
}

// A traverse that drops the last owner of a map of ephemerons (or makes one) runs while its
// thread holds the maps' lock for the collection's walk of them: the map's destructor waited for
// that lock forever. Now the program stops with a message saying why (traverse must only visit).
struct map_dropper {
  static inline std::shared_ptr<meta_map>* victim = nullptr;
  template <class V>
  void traverse(V&) {
    if (victim) victim->reset();
  }
};
struct map_maker {
  static inline bool armed = false;
  template <class V>
  void traverse(V&) {
    if (armed) meta_map made;
  }
};

TEST(GcEphemeronMisuse, ATraverseThatDestroysOrCreatesAMapStopsTheProgram) {
  const std::string style = GTEST_FLAG_GET(death_test_style);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const char* message = "created or destroyed inside a traverse";
  EXPECT_DEATH(
      {
        auto map = std::make_shared<meta_map>();
        auto dropper = weakref::make_shared<map_dropper>();
        map_dropper::victim = &map;
        weakref::gc::collect();
      },
      message);
  EXPECT_DEATH(
      {
        auto maker = weakref::make_shared<map_maker>();
        map_maker::armed = true;
        (void)weakref::gc::why_alive(maker);
      },
      message);
  GTEST_FLAG_SET(death_test_style, style);
}

// A collect() from a traverse that get_referents runs returns 0, as from any traverse a query
// runs; the garbage that owns a map of ephemerons is freed by the next collection (a version
// that ran the traverse under the maps' lock stopped the program here).
struct collecting_traverse {
  static inline bool armed = false;
  static inline std::size_t collected = 0;
  template <class V>
  void traverse(V&) {
    if (std::exchange(armed, false)) collected = weakref::gc::collect();
  }
};
struct map_in_a_cycle {
  std::shared_ptr<map_in_a_cycle> self;
  meta_map map;
  template <class V>
  void traverse(V& visit) {
    visit(self);
    visit(map);
  }
};

TEST_F(GcEphemeron, ACollectionFromATraverseThatGetReferentsRunsReturnsZero) {
  {
    auto garbage = weakref::make_shared<map_in_a_cycle>();
    garbage->self = garbage;
  }
  auto asker = weakref::make_shared<collecting_traverse>();
  collecting_traverse::collected = 99;
  collecting_traverse::armed = true;
  EXPECT_TRUE(weakref::gc::get_referents(asker).empty());
  EXPECT_EQ(collecting_traverse::collected, 0u);
  EXPECT_EQ(weakref::gc::collect(), 1u);
}

}  // namespace
