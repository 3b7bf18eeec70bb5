// Tests for weakref::gc when allocation fails: with operator new failing at each allocation a
// collection makes in turn, collect() either completes or throws std::bad_alloc having changed
// nothing (no weak reference reads dead, no edge is released, no lock waits on a verdict that
// never comes), and a later collection frees the garbage.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "support/failing_new.hpp"
#include "support/gc_nodes.hpp"
#include "support/tracked.hpp"
#include "weakref/gc.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_key_map.hpp"

namespace {

// collect() with operator new failing after `budget` allocations on this thread: what it freed,
// or nothing if it threw std::bad_alloc.
std::optional<std::size_t> collect_with_budget(long budget) {
  allocations_before_failure = budget;
  std::optional<std::size_t> freed;
  try {
    freed = weakref::gc::collect();
  } catch (const std::bad_alloc&) {
  }
  allocations_before_failure = -1;
  return freed;
}

TEST(gc_out_of_memory, a_failed_allocation_abandons_the_collection_or_fails_nothing) {
  int completed = 0;
  int abandoned = 0;
  for (long budget = 0; budget < 200 && completed < 3; ++budget) {
    event_log log;
    log.events.reserve(16);  // callbacks and destructors below must not allocate themselves
    auto [a, b] = make_pair_cycle(log, "a", "b");
    auto watcher = make_node(log, "watcher");
    watcher->held = weakref::ref<gc_node>(a, [&] { log.add("callback"); });
    b->held = weakref::ref<gc_node>(a, [&] { log.add("garbage-held callback"); });
    weakref::ref<gc_node> rb(b);
    a.reset();
    b.reset();

    auto collected = collect_with_budget(budget);
    bool threw = !collected;
    std::size_t freed = collected.value_or(0);

    if (threw) {
      ++abandoned;
      // Nothing changed: the garbage is alive, readable and intact, and a lock does not wait.
      ASSERT_TRUE(log.events.empty()) << "budget " << budget;
      auto locked = rb.lock();
      ASSERT_NE(locked, nullptr) << "budget " << budget;
      ASSERT_NE(locked->next, nullptr) << "budget " << budget;
      locked.reset();
      freed = weakref::gc::collect();
    } else {
      ++completed;
    }
    EXPECT_EQ(freed, 2u) << "budget " << budget;
    std::vector<std::string> expected{"callback", "~a", "~b"};
    auto events = log.snapshot();
    std::sort(events.begin(), events.end());
    EXPECT_EQ(events, expected) << "budget " << budget;
    EXPECT_FALSE(rb.alive());
  }
  EXPECT_GT(abandoned, 0);  // some allocation of a collection did fail
  EXPECT_EQ(completed, 3);  // and with enough memory it completes
}

// Once the garbage is condemned, freeing it allocates nothing: the room a clearing traverse
// takes edges out into (to let go of them after the traverse returns, outside any lock it takes)
// was reserved before. Here allocation fails from the callbacks on (they run before clearing).
bool leaf_owner_traversing = false;
int leaves_destroyed = 0;
int leaves_destroyed_traversing = 0;
struct oom_leaf {
  ~oom_leaf() {
    ++leaves_destroyed;
    if (leaf_owner_traversing) ++leaves_destroyed_traversing;
  }
};
struct leaf_owner {
  std::shared_ptr<leaf_owner> next;
  std::shared_ptr<oom_leaf> a = std::make_shared<oom_leaf>();
  std::vector<std::shared_ptr<oom_leaf>> more;  // untracked edges: more than any fixed slack
  template <class V>
  void traverse(V& visit) {
    leaf_owner_traversing = true;
    visit(next);
    visit(a);
    visit(more);
    leaf_owner_traversing = false;
  }
};

TEST(gc_out_of_memory, clearing_the_garbage_needs_no_allocation) {
  weakref::gc::collect();
  auto first = weakref::make_shared<leaf_owner>();
  auto second = weakref::make_shared<leaf_owner>();
  first->next = second;
  second->next = first;
  for (int i = 0; i < 40; ++i) second->more.push_back(std::make_shared<oom_leaf>());
  weakref::ref<leaf_owner> watch(first, [] { allocations_before_failure = 0; });
  first.reset();
  second.reset();
  leaves_destroyed = leaves_destroyed_traversing = 0;
  auto freed = weakref::gc::collect();
  allocations_before_failure = -1;
  EXPECT_EQ(freed, 2u);
  EXPECT_EQ(leaves_destroyed, 42);
  EXPECT_EQ(leaves_destroyed_traversing, 0);
}

TEST(gc_out_of_memory, a_failed_allocation_leaves_ephemerons_intact) {
  // The same with a key that only its own weak_key_map value owns: the analysis of the map's
  // ephemerons allocates too, and everything freeing them needs is allocated before the verdict.
  int completed = 0;
  int abandoned = 0;
  for (long budget = 0; budget < 300 && completed < 3; ++budget) {
    event_log log;
    log.events.reserve(16);
    weakref::weak_key_map<gc_node, std::shared_ptr<gc_node>> meta;
    auto key = make_node(log, "key");
    meta[key] = key;
    weakref::ref<gc_node> rk(key);
    key.reset();
    auto collected = collect_with_budget(budget);
    bool threw = !collected;
    std::size_t freed = collected.value_or(0);
    if (threw) {
      ++abandoned;
      ASSERT_TRUE(log.events.empty()) << "budget " << budget;
      ASSERT_TRUE(rk.alive()) << "budget " << budget;
      ASSERT_EQ(meta.size(), 1u) << "budget " << budget;
      freed = weakref::gc::collect();
    } else {
      ++completed;
    }
    EXPECT_EQ(freed, 1u) << "budget " << budget;
    EXPECT_EQ(log.snapshot(), std::vector<std::string>{"~key"}) << "budget " << budget;
    EXPECT_FALSE(rk.alive());
    EXPECT_EQ(meta.size(), 0u);
  }
  EXPECT_GT(abandoned, 0);
  EXPECT_EQ(completed, 3);
}

}  // namespace
