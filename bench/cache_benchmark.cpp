// Benchmarks for weakref::cache, each registered as a pair "<op>/ours" and "<op>/base" (see
// bench_support.hpp). The baseline is the get-or-create cache C++ code writes today:
//   std::mutex + std::unordered_map<int, std::weak_ptr<V>>: lock, find, weak_ptr::lock(), and on
//   a miss create under the lock and store a weak_ptr (dead entries are overwritten, never
//   erased).
// Operations (ns per operation = time / the "ops" counter), over `size` keys probed at random:
//   cache.hit              get_or_create on a key whose value is alive (held by the fixture)
//   cache.miss_and_create  get_or_create on a key whose value died: the factory runs
//                          (make_shared), the value is stored, and dies again when the caller
//                          drops it
//   mt.cache.hit           cache.hit on 2 threads at once, on one shared cache (real time):
//                          ours spreads keys over 16 locks, the baseline has one
// Our side runs with keep_recent = 0, as the baseline has no LRU front.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench_support.hpp"
#include "items.hpp"
#include "weakref/cache.hpp"

namespace {

using weakref_bench::item;
using weakref_bench::key_of;
using weakref_bench::make;
using weakref_bench::register_pair;
using weakref_bench::size_of;
using object = std::shared_ptr<item>;

// The usual hand-written cache: one mutex, a map of weak_ptrs, the factory run under the lock.
class std_cache {
 public:
  template <class F>
  object get_or_create(int key, F&& factory) {
    std::lock_guard lock(mutex_);
    auto& slot = map_[key];
    if (auto hit = slot.lock()) return hit;
    auto created = factory();
    slot = created;
    return created;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<int, std::weak_ptr<item>> map_;
};

template <class Side>
using cache_of = std::conditional_t<Side::value, weakref::cache<int, item>, std_cache>;

// A cache of `n` keys, with random probes over them; `hold` keeps every value alive.
template <class Side>
struct fixture {
  fixture(std::size_t n, bool hold) {
    std::mt19937_64 rng(n);
    for (std::size_t i = 0; i < n; ++i) {
      auto value = cache.get_or_create(key_of(i), [&] { return make<item>(Side{}, i); });
      if (hold) held.push_back(std::move(value));
    }
    probes.resize(4096);
    for (auto& p : probes) p = key_of(rng() % n);
  }
  cache_of<Side> cache;
  std::vector<object> held;
  std::vector<int> probes;  // a power of two
};

template <class Side>
void hit(benchmark::State& state, Side side) {
  fixture<Side> f(size_of(state), true);
  const auto mask = f.probes.size() - 1;
  std::size_t i = 0;
  for (auto _ : state) {
    auto key = f.probes[i++ & mask];
    benchmark::DoNotOptimize(f.cache.get_or_create(key, [&] { return make<item>(side, 0); }));
  }
  weakref_bench::set_ops(state, 1);
}

template <class Side>
void miss_and_create(benchmark::State& state, Side side) {
  fixture<Side> f(size_of(state), false);  // every value died: every call creates
  const auto mask = f.probes.size() - 1;
  std::size_t i = 0;
  for (auto _ : state) {
    auto key = f.probes[i++ & mask];
    benchmark::DoNotOptimize(f.cache.get_or_create(key, [&] { return make<item>(side, i); }));
  }
  weakref_bench::set_ops(state, 1);
}

// One fixture per side shared by the benchmark's threads (built by the first one to get here).
template <class Side>
void concurrent_hit(benchmark::State& state, Side side) {
  static fixture<Side> f(1000, true);
  const auto mask = f.probes.size() - 1;
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 1031;  // different probes
  for (auto _ : state) {
    auto key = f.probes[i++ & mask];
    benchmark::DoNotOptimize(f.cache.get_or_create(key, [&] { return make<item>(side, 0); }));
  }
  // Iterations are summed over the threads; the counter must not be.
  state.counters["ops"] = benchmark::Counter(1, benchmark::Counter::kAvgThreads);
  state.SetItemsProcessed(state.iterations());
}

void register_benchmarks() {
  register_pair("cache.hit", [](auto& s, auto side) { hit(s, side); }).apply([](auto* b) {
    b->Arg(10)->Arg(1000);
  });
  register_pair("cache.miss_and_create", [](auto& s, auto side) {
    miss_and_create(s, side);
  }).apply([](auto* b) { b->Arg(1000); });
  register_pair("mt.cache.hit", [](auto& s, auto side) {
    concurrent_hit(s, side);
  }).apply([](auto* b) { b->Arg(1000)->Threads(2)->UseRealTime(); });
}

}  // namespace

int main(int argc, char** argv) {
  return weakref_bench::bench_main(argc, argv, register_benchmarks, weakref_bench::no_context);
}
