// Benchmarks for the cycle collector (weakref/gc.hpp), each registered as a pair "<op>/ours"
// and "<op>/base" (see bench_support.hpp); the size N (objects) is the last path component:
//   gc.collect.garbage/N     weakref::gc::collect() of N tracked objects in 2-cycles, all
//                            garbage (it frees them)
//                            vs breaking the same cycles by hand: walk a registry of
//                            std::weak_ptr to every object, lock each, reset its edge, then
//                            clear the registry (what users write without a collector)
//   gc.collect.live/N        collect() of N tracked objects in 2-cycles, each cycle held from a
//                            std::vector outside (nothing to free)
//                            vs the same hand walk without the reset: lock each object, read
//                            its edge (the least any pass over the objects costs)
//   gc.make_shared.tracked   weakref::make_shared of a type with traverse (tracked) + release
//                            vs std::make_shared of the same type + release
//   gc.make_shared.untracked weakref::make_shared of the same layout without traverse + release
//                            vs std::make_shared (as make_shared.int: untouched by the collector)
//   mt.gc.make_shared.tracked  gc.make_shared.tracked on two threads at once (each links into
//                            and counts in its own shard) vs std::make_shared on two threads
//   gc.collect.ephemerons/N  collect() of N tracked objects in live 2-cycles, N / 10 of which
//                            are keys of one weak_key_map whose value (a shared_ptr) owns its
//                            key, an ephemeron each (nothing to free)
//                            vs collect() of the same objects without the map
//   gc.why_alive/N           weakref::gc::why_alive(x) for an x in the middle of N tracked
//                            objects in live 2-cycles (answer: [its partner, x])
//                            vs the hand search of a registry of std::weak_ptr to every
//                            object for those whose edge points at x (what users write)
//   gc.get_referrers/N       weakref::gc::get_referrers(x), same graph, vs the same hand search
//   gc.edit_scope            a weakref::gc::edit_scope made and destroyed (uncontended; the
//                            parked second thread is running, as in every row)
//                            vs lock_shared + unlock_shared of a std::shared_mutex
// The collect and query rows time only the collection / query / hand walk (thread CPU time;
// building the graph is untimed) and report ns per object. tools/perf_cpython_gc.py times CPython's
// gc.collect() on the same graphs. Bytes per tracked object: memory_report.cpp.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <type_traits>
#include <vector>

#include "bench_support.hpp"
#include "weakref/gc.hpp"
#include "weakref/weak_key_map.hpp"

namespace {

using weakref_bench::make;
using weakref_bench::register_pair;
using weakref_bench::size_of;

// Tracked when made by weakref::make_shared (it has traverse); 16 bytes, like plain_node.
struct gc_node {
  std::shared_ptr<gc_node> other;
  template <class V>
  void traverse(V& visit) {
    visit(other);
  }
};

// The same layout without traverse: never tracked.
struct plain_node {
  std::shared_ptr<plain_node> other;
};
static_assert(sizeof(gc_node) == sizeof(plain_node));

// N objects in N / 2 two-cycles a <-> b. `registry` (if given) gets a std::weak_ptr to each
// object; `roots` (if given) a strong reference to the first object of each cycle.
template <class Side>
void build_pairs(Side side, std::size_t n, std::vector<std::weak_ptr<gc_node>>* registry,
                 std::vector<std::shared_ptr<gc_node>>* roots) {
  for (std::size_t i = 0; i < n / 2; ++i) {
    auto a = make<gc_node>(side);
    auto b = make<gc_node>(side);
    a->other = b;
    b->other = a;
    if (registry) {
      registry->emplace_back(a);
      registry->emplace_back(b);
    }
    if (roots) roots->push_back(std::move(a));
  }
}

// The live graphs, built once per (side, N): collecting them changes nothing. Only the
// current size's graphs exist, so a collection examines exactly its N objects.
struct live_graph {
  std::size_t n = 0;
  std::vector<std::shared_ptr<gc_node>> roots;
  std::vector<std::weak_ptr<gc_node>> registry;  // the hand walk's (baseline only)
};
std::unique_ptr<live_graph> g_live[2];  // [ours], [base]; benchmarks run on one thread

// Breaks each cycle by hand before letting its root go (so no garbage is left to the next
// collection, and the baseline's untracked cycles do not leak).
void drop_live_graphs() {
  for (auto& g : g_live) {
    if (!g) continue;
    for (auto& root : g->roots) root->other.reset();
    g.reset();
  }
}

template <class Side>
live_graph& live(Side side, std::size_t n) {
  auto& slot = g_live[Side::value ? 0 : 1];
  if (!slot || slot->n != n) {
    drop_live_graphs();  // never two sizes at once
    slot = std::make_unique<live_graph>();
    slot->n = n;
    slot->roots.reserve(n / 2);
    if constexpr (!Side::value) slot->registry.reserve(n);
    build_pairs(side, n, Side::value ? nullptr : &slot->registry, &slot->roots);
  }
  return *slot;
}

template <class Side>
void collect_garbage(benchmark::State& state, Side side) {
  const auto n = size_of(state);
  drop_live_graphs();
  std::vector<std::weak_ptr<gc_node>> registry;
  std::size_t freed = 0;
  bool all_freed = true;
  weakref_bench::run_batches(
      state, n,
      [&] {
        registry.reserve(n);
        build_pairs(side, n, Side::value ? nullptr : &registry, nullptr);
      },
      [&] {
        if constexpr (Side::value) {
          freed = weakref::gc::collect();
        } else {
          for (auto& w : registry) {
            if (auto p = w.lock()) p->other.reset();  // frees the pair
          }
          freed = registry.size();
          registry.clear();  // lets the blocks go (std::make_shared's weak count)
        }
        all_freed = all_freed && freed == n;
      });
  if (!all_freed) state.SkipWithError("not every garbage object was freed");
}

template <class Side>
void collect_live(benchmark::State& state, Side side) {
  const auto n = size_of(state);
  auto& graph = live(side, n);
  std::size_t freed = 0;
  std::uintptr_t sum = 0;
  weakref_bench::run_batches(
      state, n, [] {},
      [&] {
        if constexpr (Side::value) {
          freed += weakref::gc::collect();
        } else {
          for (auto& w : graph.registry) {
            if (auto p = w.lock()) sum += reinterpret_cast<std::uintptr_t>(p->other.get());
          }
        }
      });
  benchmark::DoNotOptimize(sum);
  if (freed != 0) state.SkipWithError("a live object was freed");
}

// The live graph, tracked on both sides (the rows below compare two uses of the collector, or
// a query with the hand search), with a std::weak_ptr to every object for the hand search;
// `with_map`: one object in ten is a key of `map`, whose value owns it.
struct tracked_graph {
  explicit tracked_graph(std::size_t n, bool with_map) {
    drop_live_graphs();
    roots.reserve(n / 2);
    registry.reserve(n);
    build_pairs(weakref_bench::ours{}, n, &registry, &roots);
    if (with_map) {
      for (std::size_t i = 0; i < registry.size(); i += 10) {
        auto key = registry[i].lock();
        map[key] = key;
      }
    }
  }
  ~tracked_graph() {
    map.clear();
    for (auto& root : roots) root->other.reset();
  }
  std::vector<std::shared_ptr<gc_node>> roots;
  std::vector<std::weak_ptr<gc_node>> registry;
  weakref::weak_key_map<gc_node, std::shared_ptr<gc_node>> map;
};
static_assert(std::is_base_of_v<weakref::detail::gc_ephemeron_table, decltype(tracked_graph::map)>);

template <class Side>
void collect_ephemerons(benchmark::State& state, Side) {
  const auto n = size_of(state);
  tracked_graph graph(n, Side::value);
  std::size_t freed = 0;
  weakref_bench::run_batches(
      state, n, [] {}, [&] { freed += weakref::gc::collect(); });
  if (freed != 0) state.SkipWithError("a live object was freed");
}

// Which objects' edge points at `target`, by hand: lock each registered object, compare.
std::size_t hand_search(const std::vector<std::weak_ptr<gc_node>>& registry,
                        const std::shared_ptr<gc_node>& target) {
  std::size_t found = 0;
  for (auto& w : registry) {
    if (auto p = w.lock(); p && p->other == target) ++found;
  }
  return found;
}

enum class query { why_alive, get_referrers };

template <query Query, class Side>
void query_graph(benchmark::State& state, Side) {
  const auto n = size_of(state);
  tracked_graph graph(n, false);
  auto target = graph.registry[n / 2 + 1].lock();  // a cycle's second object
  std::size_t answers = 0;
  bool right = true;
  weakref_bench::run_batches(
      state, n, [] {},
      [&] {
        if constexpr (!Side::value) {
          answers = hand_search(graph.registry, target);
        } else if constexpr (Query == query::why_alive) {
          answers = weakref::gc::why_alive(target).size() - 1;
        } else {
          answers = weakref::gc::get_referrers(target).size();
        }
        right = right && answers == 1;
      });
  if (!right) state.SkipWithError("wrong answer");
}

template <class Side>
void enter_and_leave(benchmark::State& state, Side) {
  drop_live_graphs();
  static std::shared_mutex baseline;
  for (auto _ : state) {
    if constexpr (Side::value) {
      weakref::gc::edit_scope scope;
      benchmark::ClobberMemory();  // the moves a scope guards go here
    } else {
      baseline.lock_shared();
      benchmark::ClobberMemory();
      baseline.unlock_shared();
    }
  }
}

template <class T, class Side>
void make_release(benchmark::State& state, Side side) {
  if (state.thread_index() == 0) drop_live_graphs();  // (g_live is one thread's)
  for (auto _ : state) {
    auto obj = make<T>(side);
    benchmark::DoNotOptimize(obj);
  }
}

void register_benchmarks() {
  auto collect_sizes = [](auto* b) {
    // The smoke run (--benchmark_filter=-/1000000) skips 10^6 and 10^7.
    b->Arg(10000)->Arg(100000)->Arg(1000000)->Arg(10000000)->UseManualTime();
  };
  register_pair("gc.collect.garbage", [](auto& s, auto side) {
    collect_garbage(s, side);
  }).apply(collect_sizes);
  register_pair("gc.collect.live", [](auto& s, auto side) {
    collect_live(s, side);
  }).apply(collect_sizes);
  auto query_sizes = [](auto* b) { b->Arg(100000)->Arg(1000000)->UseManualTime(); };
  register_pair("gc.collect.ephemerons", [](auto& s, auto side) {
    collect_ephemerons(s, side);
  }).apply(query_sizes);
  register_pair("gc.why_alive", [](auto& s, auto side) {
    query_graph<query::why_alive>(s, side);
  }).apply(query_sizes);
  register_pair("gc.get_referrers", [](auto& s, auto side) {
    query_graph<query::get_referrers>(s, side);
  }).apply(query_sizes);
  register_pair("gc.make_shared.tracked",
                [](auto& s, auto side) { make_release<gc_node>(s, side); });
  register_pair("gc.make_shared.untracked",
                [](auto& s, auto side) { make_release<plain_node>(s, side); });
  register_pair("mt.gc.make_shared.tracked", [](auto& s, auto side) {
    make_release<gc_node>(s, side);
  }).apply([](auto* b) { b->Threads(2); });
  register_pair("gc.edit_scope", [](auto& s, auto side) { enter_and_leave(s, side); });
}

}  // namespace

int main(int argc, char** argv) {
  return weakref_bench::bench_main(argc, argv, register_benchmarks, weakref_bench::no_context);
}
