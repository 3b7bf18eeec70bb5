// Tests for weakref::gc with other threads running (run under ThreadSanitizer): collections
// racing with weak reference locks (which never run a destructor), copies, drops, allocations
// and deaths of tracked objects, and with each other.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/alongside.hpp"
#include "weakref/gc.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_set.hpp"

namespace {

std::atomic<long> alive_nodes{0};

// A node that other threads write while collections run: as for any read from another
// thread, traverse takes the lock its writers take (the rule in gc.hpp).
struct mt_node {
  mt_node() { alive_nodes.fetch_add(1, std::memory_order_relaxed); }
  mt_node(const mt_node&) = delete;
  mt_node& operator=(const mt_node&) = delete;
  ~mt_node() { alive_nodes.fetch_sub(1, std::memory_order_relaxed); }

  void set_next(std::shared_ptr<mt_node> n) {
    std::lock_guard lock(mutex);
    next = std::move(n);
  }
  std::shared_ptr<mt_node> get_next() {
    std::lock_guard lock(mutex);
    return next;
  }
  std::shared_ptr<mt_node> take_next() {
    std::lock_guard lock(mutex);
    return std::move(next);
  }
  template <class V>
  void traverse(V& visit) {
    std::lock_guard lock(mutex);
    visit(next);
  }

 private:
  std::mutex mutex;
  std::shared_ptr<mt_node> next;
};

std::shared_ptr<mt_node> make_cycle() {
  auto a = weakref::make_shared<mt_node>();
  auto b = weakref::make_shared<mt_node>();
  a->set_next(b);
  b->set_next(a);
  return a;
}

// Whether `n` is still in its 2-cycle, untouched.
bool intact(const std::shared_ptr<mt_node>& n) {
  auto next = n->get_next();
  return next && next->get_next() == n;
}

constexpr int rounds = 300;

TEST(gc_threads, locks_of_live_objects_always_succeed_and_leave_them_intact) {
  auto before = alive_nodes.load();
  std::vector<std::shared_ptr<mt_node>> owners;
  std::vector<weakref::ref<mt_node>> refs;
  for (int i = 0; i < 64; ++i) {
    owners.push_back(make_cycle());
    refs.emplace_back(owners.back()->get_next());  // b: alive only through the cycle from a
  }
  std::atomic<int> failures{0};
  test_support::run_alongside(
      2,
      [&] {
        for (auto& r : refs) {
          auto b = r.lock();
          if (!b || !intact(b)) failures.fetch_add(1);
        }
      },
      rounds, [](int) { EXPECT_EQ(weakref::gc::collect(), 0u); });
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(alive_nodes.load() - before, 128);
  owners.clear();
  EXPECT_EQ(weakref::gc::collect(), 128u);
  EXPECT_EQ(alive_nodes.load(), before);
}

TEST(gc_threads, a_lock_racing_a_collection_gets_an_intact_object_or_nothing) {
  auto before = alive_nodes.load();
  for (int i = 0; i < rounds; ++i) {
    auto a = make_cycle();
    weakref::ref<mt_node> r(a);
    a.reset();  // garbage now; the other thread races the collection with a lock
    std::atomic<int> kept_intact{0};
    std::atomic<int> broken{0};
    std::thread locker([&] {
      for (int k = 0; k < 50; ++k) {
        if (auto got = r.lock()) {
          // The collection must leave an object it lets a lock have alone.
          (intact(got) ? kept_intact : broken).fetch_add(1);
        }
      }
    });
    weakref::gc::collect();
    locker.join();
    EXPECT_EQ(broken.load(), 0);
    weakref::gc::collect();  // frees it if the lock's hold reprieved it
    EXPECT_FALSE(r.alive());
  }
  EXPECT_EQ(alive_nodes.load(), before);
}

// A lock that takes a reference to an object a collection has condemned answers "dead", and
// its reference goes to the collector: the object's destructor never runs inside the lock
// (as std::weak_ptr::lock never destroys anything; a caller may hold a mutex it takes).
thread_local bool locking_here = false;
std::atomic<int> destroyed_in_a_lock{0};
std::atomic<int> self_cycles_destroyed{0};
struct self_cycle {
  std::shared_ptr<self_cycle> self;
  template <class Visit>
  void traverse(Visit& visit) {
    visit(self);
  }
  self_cycle() = default;
  self_cycle(const self_cycle&) = delete;
  self_cycle& operator=(const self_cycle&) = delete;
  ~self_cycle() {
    if (locking_here) destroyed_in_a_lock.fetch_add(1);
    self_cycles_destroyed.fetch_add(1);
  }
};

TEST(gc_threads, a_lock_racing_a_collection_never_runs_the_destructor) {
  constexpr int cycles = 300;
  self_cycles_destroyed = 0;
  for (int i = 0; i < cycles; ++i) {
    auto x = weakref::make_shared<self_cycle>();
    x->self = x;
    weakref::ref<self_cycle> r(x);
    x.reset();
    std::atomic<bool> started{false};
    std::atomic<bool> finished{false};
    std::thread locker([&] {
      started = true;
      for (bool alive = true; alive;) {
        locking_here = true;
        alive = r.lock() != nullptr;
        locking_here = false;
      }
      finished = true;
    });
    while (!started) {
    }
    while (!finished) {
      weakref::gc::collect();
      std::this_thread::yield();
    }
    locker.join();
  }
  weakref::gc::collect();  // lets go of what the last locks handed over
  EXPECT_EQ(destroyed_in_a_lock.load(), 0);
  EXPECT_EQ(self_cycles_destroyed.load(), cycles);
}

TEST(gc_threads, collections_race_with_threads_that_build_share_and_drop_cycles) {
  auto before = alive_nodes.load();
  std::atomic<int> running{2};
  std::vector<std::thread> mutators;
  for (int t = 0; t < 2; ++t) {
    mutators.emplace_back([&, t] {
      std::vector<std::shared_ptr<mt_node>> kept;
      weakref::weak_set<mt_node> seen;
      for (int i = 0; i < 2000; ++i) {
        auto a = make_cycle();
        seen.add(a);
        weakref::ref<mt_node> r(a->get_next());
        if (i % 3 == t) kept.push_back(a);  // some stay alive from outside
        if (kept.size() > 16) kept.erase(kept.begin());
        if (auto b = r.lock()) {
          if (!intact(b)) std::abort();  // a live object was changed
        }
        for (auto& k : kept) {
          if (!intact(k)) std::abort();
        }
      }
      running.fetch_sub(1);
    });
  }
  while (running.load() != 0) weakref::gc::collect();
  for (auto& t : mutators) t.join();
  weakref::gc::collect();
  EXPECT_EQ(alive_nodes.load(), before);
}

// A thread that moves an edge back and forth between two live objects: moved from one already
// traversed to one not yet, the edge is subtracted twice and its target's count goes negative,
// which must not make collect() fail. Many objects between the two in the snapshot widen the
// window the move must fall in.
TEST(gc_threads, an_edge_moved_between_live_objects_during_collections_is_not_an_error) {
  auto before = alive_nodes.load();
  auto x = weakref::make_shared<mt_node>();
  std::vector<std::shared_ptr<mt_node>> between;
  for (int i = 0; i < 2000; ++i) between.push_back(weakref::make_shared<mt_node>());
  auto y = weakref::make_shared<mt_node>();
  auto target = weakref::make_shared<mt_node>();
  weakref::ref<mt_node> r(target);
  x->set_next(std::move(target));  // owned by the edge alone (or by the mover, moving it)
  std::atomic<bool> stop{false};
  std::atomic<long> moves{0};
  std::thread mover([&] {
    for (bool to_y = true; !stop.load(std::memory_order_relaxed); to_y = !to_y) {
      auto& from = to_y ? x : y;
      (to_y ? y : x)->set_next(from->take_next());
      moves.fetch_add(1, std::memory_order_relaxed);
    }
  });
  // Until enough collections overlapped moves (threads sharing a core may not interleave).
  int errors = 0;
  int overlapped = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (overlapped < 150 && std::chrono::steady_clock::now() < deadline) {
    auto moved = moves.load(std::memory_order_relaxed);
    try {
      EXPECT_EQ(weakref::gc::collect(), 0u);
    } catch (const std::logic_error&) {
      ++errors;
    }
    if (moves.load(std::memory_order_relaxed) - moved >= 2) ++overlapped;
  }
  stop = true;
  mover.join();
  EXPECT_EQ(errors, 0);
  EXPECT_TRUE(r.alive());
  x.reset();
  y.reset();
  between.clear();
  EXPECT_FALSE(r.alive());
  EXPECT_EQ(alive_nodes.load(), before);
}

TEST(gc_threads, collections_on_several_threads_at_once_free_each_object_once) {
  auto before = alive_nodes.load();
  std::atomic<std::size_t> freed{0};
  std::vector<std::thread> collectors;
  for (int t = 0; t < 3; ++t) {
    collectors.emplace_back([&] {
      for (int i = 0; i < rounds; ++i) {
        make_cycle();
        freed.fetch_add(weakref::gc::collect());
      }
    });
  }
  for (auto& t : collectors) t.join();
  freed += weakref::gc::collect();
  EXPECT_EQ(freed.load(), 3u * rounds * 2);
  EXPECT_EQ(alive_nodes.load(), before);
}

TEST(gc_threads, const_queries_run_on_several_threads_during_collections) {
  std::vector<std::shared_ptr<mt_node>> owners;
  for (int i = 0; i < 32; ++i) owners.push_back(make_cycle());
  test_support::run_alongside(
      2,
      [&] {
        EXPECT_GE(weakref::gc::get_objects().size(), 64u);
        (void)weakref::gc::get_count();
        (void)weakref::gc::get_stats();
        EXPECT_TRUE(weakref::gc::is_tracked(owners[0]));
      },
      rounds,
      [](int) {
        make_cycle();
        weakref::gc::collect();
      });
  owners.clear();
  weakref::gc::collect();
}

TEST(gc_threads, introspection_races_collections_and_threads_that_build_and_drop_cycles) {
  // Queries on two threads at once while a third builds and drops cycles and collects: each
  // answer is one of the possible ones, and ThreadSanitizer sees no race. Each query thread asks
  // about its own anchor (another thread's argument would be an outside owner of it). The churn
  // runs until both query threads are done, and has collected before they start, so every
  // round overlaps it (a churn of fixed length could end before a query thread started).
  constexpr int kRounds = 40;
  std::atomic<int> querying{2};
  std::atomic<int> churned{0};
  std::thread churn([&] {
    for (int i = 0; querying.load() > 0; ++i) {
      make_cycle();
      if (i % 10 == 0) {
        weakref::gc::collect();
        churned.fetch_add(1);
      }
    }
  });
  auto query = [&] {
    auto anchor = weakref::make_shared<mt_node>();
    while (churned.load() == 0) std::this_thread::yield();
    for (int round = 0; round < kRounds; ++round) {
      EXPECT_TRUE(weakref::gc::why_alive(anchor).empty());
      EXPECT_TRUE(weakref::gc::get_referrers(anchor).empty());
      auto report = weakref::gc::find_garbage();
      for (auto& group : report.groups) EXPECT_EQ(group.size(), 2u);  // whole cycles only
      EXPECT_NE(weakref::gc::to_dot(anchor).find("(queried)"), std::string::npos);
    }
    querying.fetch_sub(1);
  };
  std::thread second_query(query);
  query();
  second_query.join();
  churn.join();
  weakref::gc::collect();
}

// Each thread counts its tracked allocations in its own shard; get_count() adds them up, and a
// collection starts them all again from 0.
TEST(gc_threads, get_count_adds_up_the_allocations_of_every_thread) {
  weakref::gc::collect();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 100; ++i) (void)weakref::make_shared<mt_node>();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(weakref::gc::get_count(), 400u);
  weakref::gc::collect();
  EXPECT_EQ(weakref::gc::get_count(), 0u);
}

// Tracked objects made on one thread share its shard's list; two other threads drop them at
// once, alternately, so each death unlinks a neighbour of the other's. (A death read its
// record's list link before taking the shard's lock while a neighbour's unlink wrote it:
// ThreadSanitizer reported the race, found by tests/soak/weakref_soak.cpp.)
TEST(gc_threads, deaths_on_two_threads_unlink_neighbours_in_one_shard) {
  constexpr int kRounds = 20, kObjects = 200;
  const long alive_before = alive_nodes.load();
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::shared_ptr<mt_node>> halves[2];
    for (int i = 0; i < kObjects; ++i) halves[i % 2].push_back(weakref::make_shared<mt_node>());
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (auto& half : halves) {
      threads.emplace_back([&ready, &half] {
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        for (auto& n : half) n.reset();
      });
    }
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(alive_nodes.load(), alive_before);
  EXPECT_EQ(weakref::gc::collect(), 0u);
}

TEST(gc_threads, ephemeron_maps_come_and_go_during_collections) {
  // A collection reads every weak_key_map of ephemerons: their changes are synchronized with
  // it (the rule in weak_key_map.hpp), but their construction and destruction need not be: a
  // map's destructor waits for a collection's walk of the maps. Under ThreadSanitizer.
  weakref::gc::collect();
  auto before = alive_nodes.load();
  std::mutex changes;  // held while a map changes, and by the collecting thread
  test_support::run_alongside(
      1,
      [&] {
        std::lock_guard lock(changes);
        weakref::gc::collect();
      },
      300,
      [&](int i) {
        weakref::weak_key_map<mt_node, std::shared_ptr<mt_node>> meta;
        {
          std::lock_guard lock(changes);
          auto key = weakref::make_shared<mt_node>();
          meta[key] = key;  // an ephemeron: only a collection frees it while the map lives
        }
        if (i % 3 == 0) std::this_thread::yield();
      });  // each map is destroyed at the end of its round, maybe during a collection
  weakref::gc::collect();
  EXPECT_EQ(alive_nodes.load(), before);
}

// Garbage that owns maps of ephemerons, collected on two threads at once: one collection frees
// the garbage (clearing its maps, with no lock) while the other's analysis walks every map on
// the registry's list. A collection now takes its garbage's maps off the list when it condemns
// them (before: ASan heap-use-after-free in the other analysis, every run).
struct map_owner {
  std::shared_ptr<map_owner> self;
  weakref::weak_key_map<mt_node, std::shared_ptr<mt_node>> map;
  template <class V>
  void traverse(V& visit) {
    visit(self);
    visit(map);
  }
};

TEST(gc_threads, two_collections_at_once_free_garbage_that_owns_maps_of_ephemerons) {
  weakref::gc::collect();
  auto before = alive_nodes.load();
  std::vector<std::shared_ptr<mt_node>> keys(8);
  for (auto& key : keys) key = weakref::make_shared<mt_node>();
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 100; ++i) {
      auto owner = weakref::make_shared<map_owner>();
      owner->self = owner;
      for (auto& k : keys) owner->map[k] = weakref::make_shared<mt_node>();
    }  // garbage: each owner holds itself and its map
    std::thread other([] { weakref::gc::collect(); });
    weakref::gc::collect();
    weakref::gc::collect();
    other.join();
  }
  weakref::gc::collect();
  keys.clear();
  EXPECT_EQ(alive_nodes.load(), before);
}

// A collection moves the edges out of the values of entries whose key died (so that a value
// owning its key frees it now, not at the map's next change). Queries that traverse without the
// maps' lock on other threads (get_referents, get_referrers) now read a value only while holding
// its key (before: ThreadSanitizer reported the collection's write racing get_referents' read, in
// 3 runs of 4). The map's own
// changes are synchronized with collections and traverses, as gc.hpp and weak_key_map.hpp ask.
struct map_holder {
  std::mutex mutex;
  weakref::weak_key_map<mt_node, std::shared_ptr<mt_node>> map;
  template <class V>
  void traverse(V& visit) {
    std::lock_guard lock(mutex);
    visit(map);
  }
};

TEST(gc_threads, queries_read_map_values_while_a_collection_frees_those_of_dead_keys) {
  std::mutex changes;  // held while the map changes, and by the collecting thread
  auto holder = weakref::make_shared<map_holder>();
  std::atomic<int> threads{0};
  test_support::run_alongside(
      2,
      [&] {
        thread_local const bool collecting = threads.fetch_add(1) == 0;
        if (collecting) {
          std::lock_guard lock(changes);
          weakref::gc::collect();
        } else {  // without `changes`: the collection may be freeing values meanwhile
          (void)weakref::gc::get_referents(holder);
          (void)weakref::gc::get_referrers(holder);
        }
      },
      2000,
      [&](int) {
        std::lock_guard lock(changes);
        std::lock_guard own(holder->mutex);
        holder->map.clear();
        for (int i = 0; i < 16; ++i) {
          auto key = weakref::make_shared<mt_node>();
          holder->map[key] = weakref::make_shared<mt_node>();
        }  // every key dies at once: its entry waits for the map's next change or a collection
      });
  holder.reset();
  weakref::gc::collect();
}

// get_referents takes no collector lock: a thread may call it while holding a mutex that a
// traverse takes, while another thread collects (a version that ran get_referents' traverse
// under the maps' lock deadlocked here: the collection held that lock and waited for the mutex).
struct guarded_parent {
  std::mutex mutex;
  std::shared_ptr<mt_node> child;
  template <class V>
  void traverse(V& visit) {
    std::lock_guard lock(mutex);
    visit(child);
  }
};

TEST(gc_threads, get_referents_under_a_mutex_a_traverse_takes_while_another_thread_collects) {
  auto parent = weakref::make_shared<guarded_parent>();
  parent->child = weakref::make_shared<mt_node>();
  test_support::run_alongside(
      1, [] { weakref::gc::collect(); }, 2000,
      [&](int) {
        std::lock_guard lock(parent->mutex);  // a method of the parent, under its own mutex
        EXPECT_TRUE(weakref::gc::get_referents(parent->child).empty());
      });
}

// --- edit_scope (precondition (3) in gc.hpp) ---

// The move the use counts cannot see: hub w (held by a local shared_ptr) owns two spokes, and
// each spoke owns edges back to w. A writer moving such an edge from a spoke the analysis has
// traversed to one it has not yet makes it subtract the edge twice; w's local owner absorbs the
// error (its count reaches 0 instead of going negative), and w and its spokes would be
// condemned while alive. Every member is guarded by its object's mutex (precondition (1)).
struct mt_spoke;
struct mt_hub {
  std::mutex mutex;
  std::shared_ptr<mt_spoke> x, y;
  template <class V>
  void traverse(V& visit) {
    std::lock_guard lock(mutex);
    visit(x);
    visit(y);
  }
};
struct mt_spoke {
  std::mutex mutex;
  std::vector<std::shared_ptr<mt_hub>> back;
  template <class V>
  void traverse(V& visit) {
    std::lock_guard lock(mutex);
    visit(back);
  }
};

// Moves one back edge between the spokes; false once they are gone (the hub was condemned and
// its members released). Under the hub's lock, which a condemned hub's release also takes, so
// the spokes it names stay alive meanwhile; the writer holds no owner of them, as a writer that
// reached them through the hub and dropped its copies would not.
bool move_back_edge(mt_hub& hub, bool to_y) {
  std::lock_guard lock(hub.mutex);
  if (!hub.x || !hub.y) return false;
  auto& from = to_y ? *hub.x : *hub.y;
  auto& to = to_y ? *hub.y : *hub.x;
  std::scoped_lock both(from.mutex, to.mutex);
  if (from.back.empty()) return true;
  to.back.push_back(std::move(from.back.back()));
  from.back.pop_back();
  return true;
}

TEST(gc_threads, moves_under_an_edit_scope_never_condemn_a_live_object) {
  weakref::gc::collect();
  auto before = alive_nodes.load();
  auto w = weakref::make_shared<mt_hub>();
  weakref::ref<mt_hub> r(w);
  // Spokes far apart in the snapshot, so that many moves fall between their traverses.
  auto x = weakref::make_shared<mt_spoke>();
  std::vector<std::shared_ptr<mt_node>> between;
  for (int i = 0; i < 2000; ++i) between.push_back(weakref::make_shared<mt_node>());
  auto y = weakref::make_shared<mt_spoke>();
  x->back.push_back(w);
  y->back.push_back(w);
  w->x = std::move(x);
  w->y = std::move(y);
  std::atomic<bool> stop{false};
  std::atomic<bool> spokes_gone{false};
  std::atomic<long> moves{0};
  std::thread writer([&] {
    for (bool to_y = true; !stop.load(std::memory_order_relaxed); to_y = !to_y) {
      weakref::gc::edit_scope scope;  // no analysis sees half of this move
      if (!move_back_edge(*w, to_y)) {
        spokes_gone = true;
        return;
      }
      moves.fetch_add(1, std::memory_order_relaxed);
    }
  });
  // Until enough collections overlapped moves (without the scope, a few dozen condemn w).
  int overlapped = 0;
  int collections = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (overlapped < 100 && std::chrono::steady_clock::now() < deadline && r.alive()) {
    auto moved = moves.load(std::memory_order_relaxed);
    EXPECT_EQ(weakref::gc::collect(), 0u);
    ++collections;
    if (moves.load(std::memory_order_relaxed) - moved >= 2) ++overlapped;
  }
  stop = true;
  writer.join();
  EXPECT_TRUE(r.alive());
  EXPECT_FALSE(spokes_gone.load());
  EXPECT_GT(moves.load(), 0);
  EXPECT_GT(collections, 0);
  {
    std::lock_guard lock(w->mutex);
    ASSERT_TRUE(w->x && w->y);
    std::scoped_lock both(w->x->mutex, w->y->mutex);
    EXPECT_EQ(w->x->back.size() + w->y->back.size(), 2u);
  }
  w.reset();
  between.clear();
  EXPECT_EQ(weakref::gc::collect(), 3u);  // the hub and its spokes, now a garbage cycle
  EXPECT_FALSE(r.alive());
  EXPECT_EQ(alive_nodes.load(), before);
}

// Counts the analyses that reach it; while `hold` is set, its traverse also says it is being
// analysed and waits until `hold` is cleared.
struct analysis_probe {
  static inline std::atomic<int> traversals{0};
  static inline std::atomic<bool> hold{false};
  static inline std::atomic<bool> analysing{false};
  template <class V>
  void traverse(V&) {
    traversals.fetch_add(1);
    if (!hold.load()) return;
    analysing = true;
    while (hold.load()) std::this_thread::yield();
  }
};

TEST(gc_threads, a_scope_on_one_thread_holds_off_another_threads_analysis_until_released) {
  weakref::gc::collect();
  auto probe = weakref::make_shared<analysis_probe>();
  analysis_probe::traversals = 0;
  std::atomic<bool> started{false};
  auto id = weakref::gc::add_callback([&](weakref::gc::phase p, const auto&) {
    if (p == weakref::gc::phase::start) started = true;
  });
  std::thread collector;
  {
    weakref::gc::edit_scope scope;
    collector = std::thread([] { weakref::gc::collect(); });
    while (!started.load()) std::this_thread::yield();
    // The collection has begun; its analysis must not read anything while the scope is held.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(analysis_probe::traversals.load(), 0);
  }
  collector.join();
  EXPECT_EQ(analysis_probe::traversals.load(), 1);
  weakref::gc::remove_callback(id);
}

TEST(gc_threads, a_scope_opened_during_an_analysis_waits_for_its_verdict) {
  weakref::gc::collect();
  auto probe = weakref::make_shared<analysis_probe>();
  analysis_probe::analysing = false;
  analysis_probe::hold = true;
  std::thread collector([] { weakref::gc::collect(); });
  while (!analysis_probe::analysing.load()) std::this_thread::yield();
  std::atomic<bool> entered{false};
  std::thread editor([&] {
    weakref::gc::edit_scope scope;
    entered = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(entered.load());  // the analysis is still running
  analysis_probe::hold = false;
  collector.join();
  editor.join();
  EXPECT_TRUE(entered.load());
}

TEST(gc_threads, scopes_on_several_threads_are_held_at_once) {
  std::atomic<int> inside{0};
  std::atomic<bool> all_inside{false};
  std::vector<std::thread> editors;
  for (int t = 0; t < 3; ++t) {
    editors.emplace_back([&] {
      weakref::gc::edit_scope scope;
      inside.fetch_add(1);
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (inside.load() < 3 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      if (inside.load() == 3) all_inside = true;
    });
  }
  for (auto& t : editors) t.join();
  EXPECT_TRUE(all_inside.load());
  EXPECT_EQ(weakref::gc::collect(), 0u);  // and collections go on afterwards
}

// Collections on two threads while two writers swap edges between live cycles under scopes:
// each analysis waits for the scopes and each scope for the analysis under way; nothing
// deadlocks, and nothing live is condemned.
TEST(gc_threads, scopes_and_collections_on_several_threads_make_progress) {
  auto before = alive_nodes.load();
  std::vector<std::shared_ptr<mt_node>> owners;
  std::vector<weakref::ref<mt_node>> refs;
  for (int i = 0; i < 16; ++i) {
    owners.push_back(make_cycle());
    refs.emplace_back(owners.back());
    refs.emplace_back(owners.back()->get_next());
  }
  std::mutex swapping;  // one swap at a time (each takes two edges out, then puts them back)
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (std::size_t t = 0; t < 2; ++t) {
    writers.emplace_back([&, t] {
      for (std::size_t i = t; !stop.load(); i += 2) {
        weakref::gc::edit_scope scope;
        std::lock_guard lock(swapping);
        auto& a = owners[i % owners.size()];
        auto& b = owners[(i + 7) % owners.size()];
        auto an = a->take_next();  // swapped: every use count is as it was
        a->set_next(b->take_next());
        b->set_next(std::move(an));
      }
    });
  }
  std::vector<std::thread> collectors;
  for (int t = 0; t < 2; ++t) {
    collectors.emplace_back([] {
      for (int i = 0; i < 50; ++i) {
        make_cycle();
        weakref::gc::collect();
      }
    });
  }
  for (auto& t : collectors) t.join();
  stop = true;
  for (auto& t : writers) t.join();
  for (auto& r : refs) EXPECT_TRUE(r.alive());
  owners.clear();
  weakref::gc::collect();
  for (auto& r : refs) EXPECT_FALSE(r.alive());
  EXPECT_EQ(alive_nodes.load(), before);
}
// Freeing garbage destroys a weak_key_map of traversable values it owns (here inside a vector,
// so clearing the vector destroys it) inside the garbage's clearing traverse, which holds a lock
// (`scene`) that a live object's traverse takes. Meanwhile a query on another thread walks the
// maps: it holds their registry's lock and waits for `scene`. The collection took the garbage's
// maps off the registry for good, so destroying them must not wait for that lock.
std::mutex scene;  // (not timed_mutex: ThreadSanitizer does not see try_lock_for take it)
std::atomic<bool> clearing_armed{false};
std::atomic<bool> query_may_start{false};
std::atomic<bool> query_waits_for_scene{false};
std::atomic<bool> query_timed_out{false};
struct scene_value {
  std::shared_ptr<int> payload = std::make_shared<int>(1);
};
struct map_key {};
struct maps_owner {  // garbage: a self-cycle owning maps of ephemerons
  std::shared_ptr<maps_owner> self;
  std::vector<weakref::weak_key_map<map_key, std::shared_ptr<scene_value>>> maps;
  template <class V>
  void traverse(V& visit) {
    std::lock_guard lock(scene);
    if (clearing_armed.exchange(false)) {  // the clearing traverse: let the query block on scene
      while (!query_waits_for_scene.load()) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    visit(self);
    visit(maps);
  }
};
struct scene_member {  // alive: its traverse takes scene
  template <class V>
  void traverse(V&) {
    query_waits_for_scene = true;
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!scene.try_lock()) {
      if (std::chrono::steady_clock::now() > give_up) {
        query_timed_out = true;  // the two threads would have waited for each other
        return;
      }
      std::this_thread::yield();
    }
    scene.unlock();
  }
};

TEST(gc_threads, destroying_the_garbages_maps_of_ephemerons_waits_for_no_query) {
  weakref::gc::collect();
  auto key = weakref::make_shared<map_key>();
  auto live = weakref::make_shared<scene_member>();
  {
    auto owner = weakref::make_shared<maps_owner>();
    owner->self = owner;
    owner->maps.resize(2);
    for (auto& map : owner->maps) map[key] = std::make_shared<scene_value>();
    weakref::ref<maps_owner> watch(owner, [] {  // runs after the analysis, before clearing
      query_waits_for_scene = false;
      clearing_armed = true;
      query_may_start = true;
    });
    owner.reset();
    std::thread query([&] {
      while (!query_may_start.load()) std::this_thread::yield();
      (void)weakref::gc::why_alive(live);  // walks the maps, then runs live's traverse
    });
    EXPECT_EQ(weakref::gc::collect(), 1u);
    query.join();
  }
  EXPECT_FALSE(query_timed_out.load());
}

}  // namespace
