// Benchmarks for the weak containers, each beside its std baseline, at 10, 1000 and 1000000
// entries:
//   BM_WeakValueMapLookupHit     vs BM_StdUnorderedMapWeakPtrLookupHit   find + lock, random keys
//   BM_WeakValueMapLookupMiss    vs BM_StdUnorderedMapWeakPtrLookupMiss  absent keys
//   BM_WeakValueMapInsert        vs BM_StdUnorderedMapWeakPtrInsert      N inserts into an empty
//                                                                        map, then its teardown
//   BM_WeakValueMapEraseOnDeath  vs BM_StdUnorderedMapWeakPtrEraseOnDeath  the last owner goes
//                                   and the entry leaves (ours: by itself, applied at the next
//                                   operation; baseline: erase(key) by hand); manual time
//                                   (thread CPU time of the deaths only)
//   BM_WeakKeyMapLookupHit       vs BM_StdMapOwnerLessLookupHit (std::map<weak_ptr, V,
//                                   owner_less<>>) and BM_StdUnorderedMapRawPtrLookupHit
//                                   (std::unordered_map<K*, V>: fast, but unsafe)
//   BM_WeakSetIterateCall        vs BM_StdVectorWeakPtrIterateCall       lock each, virtual call
//   BM_WeakSetInsert             vs BM_StdVectorWeakPtrInsert            N inserts / push_backs
// Every benchmark sets the counter "ops" (operations per iteration); tools/bench_containers.py
// divides by it, pairs the benchmarks and prints a table.
//
// Containers and objects are built once per benchmark run (or reused from the previous run of
// the same benchmark and size), never inside the timed loop.
//
// libstdc++ uses non-atomic reference counts while a program has a single thread, so main()
// starts a second (parked) thread before any timing: every number here is the multi-threaded
// cost users actually pay. main() also reports bytes per entry, ours beside the baseline's,
// counted by the global operator new below while 100000 entries are inserted.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "parked_thread.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_set.hpp"
#include "weakref/weak_value_map.hpp"

#if __has_include(<malloc.h>)
#include <malloc.h>  // malloc_usable_size, for unsized deletes
#define WEAKREF_BENCH_USABLE_SIZE(p) malloc_usable_size(p)
#else
#define WEAKREF_BENCH_USABLE_SIZE(p) \
  std::size_t { 0 }
#endif

// --- a counting global operator new (only counts while `on`; main() is single-threaded
// then, apart from the parked thread, which does not allocate) ---

namespace {
std::atomic<bool> g_counting{false};
std::size_t g_allocated = 0;  // bytes requested while counting
std::size_t g_freed = 0;      // bytes freed while counting (sized delete: exact)
}  // namespace

void* operator new(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  if (g_counting.load(std::memory_order_relaxed)) g_allocated += n;
  return p;
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept {
  if (p && g_counting.load(std::memory_order_relaxed)) g_freed += WEAKREF_BENCH_USABLE_SIZE(p);
  std::free(p);
}
void operator delete(void* p, std::size_t n) noexcept {
  if (p && g_counting.load(std::memory_order_relaxed)) g_freed += n;
  std::free(p);
}
void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t n) noexcept { ::operator delete(p, n); }

// The observers live outside the anonymous namespace and have two implementations, so the
// compiler cannot devirtualize notify(): the benchmark makes a real virtual call.
namespace weakref_bench {
struct observer {
  virtual ~observer() = default;
  virtual void notify(std::uint64_t& sum) const noexcept = 0;
};
struct counting_observer : observer {
  explicit counting_observer(std::uint64_t id) : id(id) {}
  void notify(std::uint64_t& sum) const noexcept override;
  std::uint64_t id;
};
struct silent_observer : observer {
  void notify(std::uint64_t&) const noexcept override;
};
[[gnu::noinline]] void counting_observer::notify(std::uint64_t& sum) const noexcept { sum += id; }
[[gnu::noinline]] void silent_observer::notify(std::uint64_t&) const noexcept {}
}  // namespace weakref_bench

namespace {

using weakref_bench::counting_observer;
using weakref_bench::observer;

struct value {
  explicit value(int v) : v(v) {}
  int v;
};

// Distinct int keys, not in order: multiplying by an odd constant is a bijection mod 2^32.
// Keys of 0..n-1 are present; keys of n..2n-1 are the misses.
int key_of(std::size_t i) { return static_cast<int>(static_cast<std::uint32_t>(i) * 0x9E3779B1u); }

// Random positions in [0, n), as many as a power of two (so `i & mask` cycles through them).
std::vector<std::size_t> probe_positions(std::size_t n) {
  std::size_t count = 1024;
  while (count < n && count < (std::size_t{1} << 20)) count *= 2;
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::size_t> pick(0, n - 1);
  std::vector<std::size_t> positions(count);
  for (auto& p : positions) p = pick(rng);
  return positions;
}

// One fixture at a time (so at most one set of 1e6 objects exists), reused by the next run of
// the same benchmark at the same size: the 1e6-entry containers are built once per benchmark
// and size, not once per run.
struct fixture_slot {
  const void* tag = nullptr;
  std::size_t n = 0;
  std::shared_ptr<void> fixture;
};
fixture_slot& the_fixture_slot() {
  static fixture_slot slot;
  return slot;
}
template <class Fixture>
Fixture& cached(std::size_t n) {
  static const char tag = 0;  // one per Fixture type
  auto& slot = the_fixture_slot();
  if (slot.tag != &tag || slot.n != n || !slot.fixture) {
    slot.fixture.reset();  // free the previous one first
    slot.fixture = std::make_shared<Fixture>(n);
    slot.tag = &tag;
    slot.n = n;
  }
  return *static_cast<Fixture*>(slot.fixture.get());
}

std::size_t size_of(const benchmark::State& state) {
  return static_cast<std::size_t>(state.range(0));
}

void set_ops(benchmark::State& state, std::size_t ops) {
  state.counters["ops"] = static_cast<double>(ops);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(ops));
}

#define WEAKREF_CONTAINER_SIZES ->Arg(10)->Arg(1000)->Arg(1000000)

// --- weak_value_map lookups ---

template <bool Ours>
struct value_map_fixture {
  explicit value_map_fixture(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      owners.push_back(Ours ? weakref::make_shared<value>(static_cast<int>(i))
                            : std::make_shared<value>(static_cast<int>(i)));
      map.try_emplace(key_of(i), owners.back());
    }
    for (auto p : probe_positions(n)) {
      hits.push_back(key_of(p));
      misses.push_back(key_of(n + p));
    }
  }
  std::vector<std::shared_ptr<value>> owners;
  std::conditional_t<Ours, weakref::weak_value_map<int, value>,
                     std::unordered_map<int, std::weak_ptr<value>>>
      map;
  std::vector<int> hits, misses;
};

std::shared_ptr<value> lookup(const weakref::weak_value_map<int, value>& map, int key) {
  return map.get(key);
}
std::shared_ptr<value> lookup(const std::unordered_map<int, std::weak_ptr<value>>& map, int key) {
  auto it = map.find(key);
  return it == map.end() ? nullptr : it->second.lock();
}

template <bool Ours, bool Hit>
void value_map_lookup(benchmark::State& state) {
  const auto& f = cached<value_map_fixture<Ours>>(size_of(state));
  const auto& keys = Hit ? f.hits : f.misses;
  const auto mask = keys.size() - 1;
  std::size_t i = 0;
  for (auto _ : state) {
    auto p = lookup(f.map, keys[i++ & mask]);
    benchmark::DoNotOptimize(p);
  }
  set_ops(state, 1);
}

void BM_WeakValueMapLookupHit(benchmark::State& state) { value_map_lookup<true, true>(state); }
void BM_StdUnorderedMapWeakPtrLookupHit(benchmark::State& state) {
  value_map_lookup<false, true>(state);
}
void BM_WeakValueMapLookupMiss(benchmark::State& state) { value_map_lookup<true, false>(state); }
void BM_StdUnorderedMapWeakPtrLookupMiss(benchmark::State& state) {
  value_map_lookup<false, false>(state);
}
BENCHMARK(BM_WeakValueMapLookupHit) WEAKREF_CONTAINER_SIZES;
BENCHMARK(BM_StdUnorderedMapWeakPtrLookupHit) WEAKREF_CONTAINER_SIZES;
BENCHMARK(BM_WeakValueMapLookupMiss) WEAKREF_CONTAINER_SIZES;
BENCHMARK(BM_StdUnorderedMapWeakPtrLookupMiss) WEAKREF_CONTAINER_SIZES;

// --- weak_value_map insert: N fresh keys into an empty map (its teardown included) ---

template <bool Ours>
struct objects_fixture {
  explicit objects_fixture(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      keys.push_back(key_of(i));
      objects.push_back(Ours ? weakref::make_shared<value>(static_cast<int>(i))
                             : std::make_shared<value>(static_cast<int>(i)));
    }
  }
  std::vector<int> keys;
  std::vector<std::shared_ptr<value>> objects;
};

void BM_WeakValueMapInsert(benchmark::State& state) {
  const auto& f = cached<objects_fixture<true>>(size_of(state));
  for (auto _ : state) {
    weakref::weak_value_map<int, value> map;
    for (std::size_t i = 0; i < f.keys.size(); ++i) map.try_emplace(f.keys[i], f.objects[i]);
    benchmark::DoNotOptimize(map);
  }
  set_ops(state, size_of(state));
}
void BM_StdUnorderedMapWeakPtrInsert(benchmark::State& state) {
  const auto& f = cached<objects_fixture<false>>(size_of(state));
  for (auto _ : state) {
    std::unordered_map<int, std::weak_ptr<value>> map;
    for (std::size_t i = 0; i < f.keys.size(); ++i) map.try_emplace(f.keys[i], f.objects[i]);
    benchmark::DoNotOptimize(map);
  }
  set_ops(state, size_of(state));
}
BENCHMARK(BM_WeakValueMapInsert) WEAKREF_CONTAINER_SIZES;
BENCHMARK(BM_StdUnorderedMapWeakPtrInsert) WEAKREF_CONTAINER_SIZES;

// --- weak_value_map: an object's death removes its entry ---
//
// The map holds N entries, `batch` of them transient. Untimed: create the transient objects
// and insert them. Timed (manual time): each transient object's last owner goes, then the map
// is used once (ours: size() applies the death; baseline: erase(key) is the manual cleanup).
// The manual time is this thread's CPU time for that section, less the clock's own cost.
template <bool Ours>
struct death_fixture {
  explicit death_fixture(std::size_t n) : batch(std::min<std::size_t>(n, 64)) {
    for (std::size_t i = batch; i < n; ++i) {
      resident.push_back(Ours ? weakref::make_shared<value>(static_cast<int>(i))
                              : std::make_shared<value>(static_cast<int>(i)));
      map.try_emplace(key_of(i), resident.back());
    }
    for (std::size_t i = 0; i < batch; ++i) keys.push_back(key_of(i));
    transient.resize(batch);
  }
  std::size_t batch;
  std::vector<std::shared_ptr<value>> resident, transient;
  std::vector<int> keys;
  std::conditional_t<Ours, weakref::weak_value_map<int, value>,
                     std::unordered_map<int, std::weak_ptr<value>>>
      map;
};

// This thread's CPU time, in seconds: the machine may be busy, and the timed sections are
// short, so wall time would mostly measure preemption. Falls back to steady_clock.
double thread_seconds() {
#ifdef CLOCK_THREAD_CPUTIME_ID
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
#else
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
#endif
}
// What two back-to-back thread_seconds() calls measure (subtracted from each timed section).
double clock_overhead() {
  static const double overhead = [] {
    double best = 1.0;
    for (int i = 0; i < 1000; ++i) {
      double start = thread_seconds();
      best = std::min(best, thread_seconds() - start);
    }
    return best;
  }();
  return overhead;
}

template <bool Ours>
void erase_on_death(benchmark::State& state) {
  auto& f = cached<death_fixture<Ours>>(size_of(state));
  clock_overhead();
  for (auto _ : state) {
    for (std::size_t i = 0; i < f.batch; ++i) {
      f.transient[i] = Ours ? weakref::make_shared<value>(static_cast<int>(i))
                            : std::make_shared<value>(static_cast<int>(i));
      f.map.try_emplace(f.keys[i], f.transient[i]);
    }
    double start = thread_seconds();
    for (std::size_t i = 0; i < f.batch; ++i) {
      f.transient[i].reset();
      if constexpr (Ours) {
        benchmark::DoNotOptimize(f.map.size());
      } else {
        benchmark::DoNotOptimize(f.map.erase(f.keys[i]));
      }
    }
    double stop = thread_seconds();
    state.SetIterationTime(std::max(0.0, stop - start - clock_overhead()));
  }
  if (f.map.size() != size_of(state) - f.batch) state.SkipWithError("entries left behind");
  set_ops(state, f.batch);
}
void BM_WeakValueMapEraseOnDeath(benchmark::State& state) { erase_on_death<true>(state); }
void BM_StdUnorderedMapWeakPtrEraseOnDeath(benchmark::State& state) {
  erase_on_death<false>(state);
}
BENCHMARK(BM_WeakValueMapEraseOnDeath) WEAKREF_CONTAINER_SIZES->UseManualTime();
BENCHMARK(BM_StdUnorderedMapWeakPtrEraseOnDeath) WEAKREF_CONTAINER_SIZES->UseManualTime();

// --- weak_key_map lookup by a live key ---

enum class key_map_kind { ours, owner_less_map, raw_pointer_map };

template <key_map_kind Kind>
struct key_map_fixture {
  using map_type =
      std::conditional_t<Kind == key_map_kind::ours, weakref::weak_key_map<value, int>,
                         std::conditional_t<Kind == key_map_kind::owner_less_map,
                                            std::map<std::weak_ptr<value>, int, std::owner_less<>>,
                                            std::unordered_map<const value*, int>>>;
  explicit key_map_fixture(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      owners.push_back(Kind == key_map_kind::ours ? weakref::make_shared<value>(static_cast<int>(i))
                                                  : std::make_shared<value>(static_cast<int>(i)));
      if constexpr (Kind == key_map_kind::raw_pointer_map) {
        map.try_emplace(owners.back().get(), static_cast<int>(i));
      } else {
        map.try_emplace(owners.back(), static_cast<int>(i));
      }
    }
    for (auto p : probe_positions(n)) probes.push_back(owners[p]);
  }
  std::vector<std::shared_ptr<value>> owners, probes;
  map_type map;
};

template <key_map_kind Kind>
void key_map_lookup(benchmark::State& state) {
  const auto& f = cached<key_map_fixture<Kind>>(size_of(state));
  const auto mask = f.probes.size() - 1;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& key = f.probes[i++ & mask];
    if constexpr (Kind == key_map_kind::ours) {
      benchmark::DoNotOptimize(f.map.at(key));
    } else if constexpr (Kind == key_map_kind::owner_less_map) {
      benchmark::DoNotOptimize(f.map.find(key)->second);
    } else {
      benchmark::DoNotOptimize(f.map.find(key.get())->second);
    }
  }
  set_ops(state, 1);
}
void BM_WeakKeyMapLookupHit(benchmark::State& state) { key_map_lookup<key_map_kind::ours>(state); }
void BM_StdMapOwnerLessLookupHit(benchmark::State& state) {
  key_map_lookup<key_map_kind::owner_less_map>(state);
}
void BM_StdUnorderedMapRawPtrLookupHit(benchmark::State& state) {
  key_map_lookup<key_map_kind::raw_pointer_map>(state);
}
BENCHMARK(BM_WeakKeyMapLookupHit) WEAKREF_CONTAINER_SIZES;
BENCHMARK(BM_StdMapOwnerLessLookupHit) WEAKREF_CONTAINER_SIZES;
BENCHMARK(BM_StdUnorderedMapRawPtrLookupHit) WEAKREF_CONTAINER_SIZES;

// --- weak_set: iterate the live observers and call a virtual, non-inlined method ---

template <bool Ours>
struct observers_fixture {
  explicit observers_fixture(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      owners.push_back(Ours ? std::shared_ptr<observer>(weakref::make_shared<counting_observer>(i))
                            : std::shared_ptr<observer>(std::make_shared<counting_observer>(i)));
      if constexpr (Ours) {
        set.insert(owners.back());
      } else {
        set.push_back(owners.back());
      }
    }
  }
  std::vector<std::shared_ptr<observer>> owners;
  std::conditional_t<Ours, weakref::weak_set<observer>, std::vector<std::weak_ptr<observer>>> set;
};

void BM_WeakSetIterateCall(benchmark::State& state) {
  const auto& f = cached<observers_fixture<true>>(size_of(state));
  for (auto _ : state) {
    std::uint64_t sum = 0;
    for (const auto& o : f.set) o->notify(sum);
    benchmark::DoNotOptimize(sum);
  }
  set_ops(state, size_of(state));
}
void BM_StdVectorWeakPtrIterateCall(benchmark::State& state) {
  const auto& f = cached<observers_fixture<false>>(size_of(state));
  for (auto _ : state) {
    std::uint64_t sum = 0;
    for (const auto& w : f.set) {
      if (auto o = w.lock()) o->notify(sum);
    }
    benchmark::DoNotOptimize(sum);
  }
  set_ops(state, size_of(state));
}
BENCHMARK(BM_WeakSetIterateCall) WEAKREF_CONTAINER_SIZES;
BENCHMARK(BM_StdVectorWeakPtrIterateCall) WEAKREF_CONTAINER_SIZES;

// --- weak_set insert: N objects into an empty set (its teardown included) ---

void BM_WeakSetInsert(benchmark::State& state) {
  const auto& f = cached<objects_fixture<true>>(size_of(state));
  for (auto _ : state) {
    weakref::weak_set<value> set;
    for (const auto& obj : f.objects) set.insert(obj);
    benchmark::DoNotOptimize(set);
  }
  set_ops(state, size_of(state));
}
void BM_StdVectorWeakPtrInsert(benchmark::State& state) {
  const auto& f = cached<objects_fixture<false>>(size_of(state));
  for (auto _ : state) {
    std::vector<std::weak_ptr<value>> set;
    for (const auto& obj : f.objects) set.push_back(obj);
    benchmark::DoNotOptimize(set);
  }
  set_ops(state, size_of(state));
}
BENCHMARK(BM_WeakSetInsert) WEAKREF_CONTAINER_SIZES;
BENCHMARK(BM_StdVectorWeakPtrInsert) WEAKREF_CONTAINER_SIZES;

// --- bytes per entry ---

// Fills an empty Container with `n` entries by `add(container, i)` (the objects already
// exist) and reports what operator new saw: "live=X allocated=Y" in bytes per entry, where
// live = allocated - freed by the time the container is full (growth garbage excluded).
template <class Container, class Add>
std::string bytes_per_entry(std::size_t n, Add add) {
  g_allocated = g_freed = 0;
  g_counting.store(true, std::memory_order_relaxed);
  std::size_t allocated = 0, freed = 0;
  {
    Container container;
    for (std::size_t i = 0; i < n; ++i) add(container, i);
    g_counting.store(false, std::memory_order_relaxed);
    allocated = g_allocated;
    freed = g_freed;
  }
  char text[96];
  std::snprintf(text, sizeof text, "live=%.1f allocated=%.1f B/entry (n=%zu)",
                static_cast<double>(allocated - std::min(freed, allocated)) / n,
                static_cast<double>(allocated) / n, n);
  return text;
}

void report_memory() {
  constexpr std::size_t n = 100000;
  std::vector<std::shared_ptr<value>> objects;
  for (std::size_t i = 0; i < n; ++i)
    objects.push_back(weakref::make_shared<value>(static_cast<int>(i)));
  auto context = [](const char* name, std::string text) {
    benchmark::AddCustomContext(std::string("memory ") + name, text);
  };
  context("weak_value_map<int,V>",
          bytes_per_entry<weakref::weak_value_map<int, value>>(
              n, [&](auto& c, std::size_t i) { c.try_emplace(key_of(i), objects[i]); }));
  context("std::unordered_map<int,weak_ptr<V>>",
          bytes_per_entry<std::unordered_map<int, std::weak_ptr<value>>>(
              n, [&](auto& c, std::size_t i) { c.try_emplace(key_of(i), objects[i]); }));
  context("weak_key_map<K,int>",
          bytes_per_entry<weakref::weak_key_map<value, int>>(
              n, [&](auto& c, std::size_t i) { c.try_emplace(objects[i], static_cast<int>(i)); }));
  context("std::map<weak_ptr<K>,int,owner_less<>>",
          bytes_per_entry<std::map<std::weak_ptr<value>, int, std::owner_less<>>>(
              n, [&](auto& c, std::size_t i) { c.try_emplace(objects[i], static_cast<int>(i)); }));
  context("std::unordered_map<K*,int>",
          bytes_per_entry<std::unordered_map<const value*, int>>(n, [&](auto& c, std::size_t i) {
            c.try_emplace(objects[i].get(), static_cast<int>(i));
          }));
  context("weak_set<T>", bytes_per_entry<weakref::weak_set<value>>(
                             n, [&](auto& c, std::size_t i) { c.insert(objects[i]); }));
  context("std::vector<weak_ptr<T>>",
          bytes_per_entry<std::vector<std::weak_ptr<value>>>(
              n, [&](auto& c, std::size_t i) { c.push_back(objects[i]); }));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  parked_thread second_thread;
  report_threading_mode();
  report_memory();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
