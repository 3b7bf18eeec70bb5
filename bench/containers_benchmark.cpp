// Benchmarks for the weak containers at 10, 1,000 and 1,000,000 entries, each registered as a
// pair "<op>/ours" and "<op>/base" (see bench_support.hpp). Baselines:
//   weak_value_map<int, V>   std::unordered_map<int, std::weak_ptr<V>>
//   weak_key_map<K, V>       std::map<std::weak_ptr<K>, V, std::owner_less<>>
//   weak_set<T>              std::vector<std::weak_ptr<T>> (linear search; push_back)
// Operations, for each container C (ns per operation = time / the "ops" counter):
//   C.lookup_hit    find a present entry and lock it (random probes; also at 10^4, 3*10^4
//                   and 10^5, where the containers outgrow a 1 MiB L2 cache)
//   C.lookup_miss   look up an absent key or object
//   C.insert        insert a batch of min(size, 64) new entries into a container of `size`
//                   (below 64 entries, into several such containers: container_fixture)
//   C.erase         erase such a batch again
//   C.iterate       visit every entry, locking it (weak_set: and make a virtual call)
//   C.death         the last owner of an entry's object goes and the entry leaves: ours by
//                   itself (applied at the next operation, here size()); the baseline by hand
//                   (erase(key) / erase(weak_ptr) / find and erase in the vector)
//   C.death_floor   not ours: the baseline of C.death plus the atomic operations any
//                   container that removes entries by itself adds (its "ours" side), beside
//                   the baseline: the lower bound of C.death's ratio
//   mt.weak_value_map.lookup_during_deaths  lookup hits while a second thread releases the
//                   objects of entries (one replaced entry per 16 lookups): deaths land on
//                   the other thread while this one looks up
// insert, erase and death time only their batch (thread CPU time, manual time); the
// containers are built once per pair and size (bench_support.hpp's cached()).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench_support.hpp"
#include "items.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_set.hpp"
#include "weakref/weak_value_map.hpp"

namespace {

using weakref_bench::cached;
using weakref_bench::item;
using weakref_bench::key_of;
using weakref_bench::make;
using weakref_bench::register_pair;
using weakref_bench::size_of;
using object = std::shared_ptr<item>;

// Owner equality of a weak_ptr and a shared_ptr (what a vector of weak_ptrs searches by).
bool same_owner(const std::weak_ptr<item>& w, const std::weak_ptr<item>& o) {
  return !w.owner_before(o) && !o.owner_before(w);
}

// --- one adaptor per container and side: the operations the benchmarks time ---

template <class Side>
struct value_map_ops {
  using container = std::conditional_t<Side::value, weakref::weak_value_map<int, item>,
                                       std::unordered_map<int, std::weak_ptr<item>>>;
  using probe = int;      // what lookups and erase take
  using death_key = int;  // what the baseline erases by once the object is dead
  static probe probe_of(std::size_t i, const object&) { return key_of(i); }
  static death_key death_key_of(std::size_t i, const object&) { return key_of(i); }
  static void insert(container& c, probe key, const object& obj) { c.try_emplace(key, obj); }
  static void assign(container& c, probe key, const object& obj) { c.insert_or_assign(key, obj); }
  static object lookup(const container& c, probe key) {
    if constexpr (Side::value) {
      return c.get(key);
    } else {
      auto it = c.find(key);
      return it == c.end() ? nullptr : it->second.lock();
    }
  }
  static void erase(container& c, probe key) { c.erase(key); }
  static std::uint64_t iterate(const container& c) {
    std::uint64_t sum = 0;
    if constexpr (Side::value) {
      for (const auto& [key, value] : c) sum += value->id;
    } else {
      for (const auto& [key, weak] : c)
        if (auto value = weak.lock()) sum += value->id;
    }
    return sum;
  }
  static void forget(container& c, death_key key) { c.erase(key); }
};

template <class Side>
struct key_map_ops {
  using container =
      std::conditional_t<Side::value, weakref::weak_key_map<item, std::uint64_t>,
                         std::map<std::weak_ptr<item>, std::uint64_t, std::owner_less<>>>;
  using probe = object;
  using death_key = std::weak_ptr<item>;
  static probe probe_of(std::size_t, const object& obj) { return obj; }
  static death_key death_key_of(std::size_t, const object& obj) { return obj; }
  static void insert(container& c, const probe& key, const object&) { c.try_emplace(key, key->id); }
  static std::optional<std::uint64_t> lookup(const container& c, const probe& key) {
    if constexpr (Side::value) {
      return c.get(key);
    } else {
      auto it = c.find(key);
      return it == c.end() ? std::nullopt : std::optional(it->second);
    }
  }
  static void erase(container& c, const probe& key) { c.erase(key); }
  static std::uint64_t iterate(const container& c) {
    std::uint64_t sum = 0;
    if constexpr (Side::value) {
      for (const auto& [key, value] : c) sum += value;
    } else {
      for (const auto& [weak, value] : c)
        if (auto key = weak.lock()) sum += value;
    }
    return sum;
  }
  static void forget(container& c, const death_key& key) { c.erase(key); }
};

template <class Side>
struct set_ops {
  using container =
      std::conditional_t<Side::value, weakref::weak_set<item>, std::vector<std::weak_ptr<item>>>;
  using probe = object;
  using death_key = std::weak_ptr<item>;
  static probe probe_of(std::size_t, const object& obj) { return obj; }
  static death_key death_key_of(std::size_t, const object& obj) { return obj; }
  static void insert(container& c, const probe& obj, const object&) {
    if constexpr (Side::value) {
      c.insert(obj);
    } else {
      c.push_back(obj);
    }
  }
  static auto find(const std::vector<std::weak_ptr<item>>& c, const std::weak_ptr<item>& w) {
    return std::find_if(c.begin(), c.end(), [&](const auto& e) { return same_owner(e, w); });
  }
  static bool lookup(const container& c, const probe& obj) {
    if constexpr (Side::value) {
      return c.contains(obj);
    } else {
      return find(c, obj) != c.end();
    }
  }
  static void erase(container& c, const probe& obj) {
    if constexpr (Side::value) {
      c.erase(obj);
    } else if (auto it = find(c, obj); it != c.end()) {
      c.erase(it);
    }
  }
  static std::uint64_t iterate(const container& c) {
    std::uint64_t sum = 0;
    if constexpr (Side::value) {
      for (const auto& obj : c) obj->notify(sum);
    } else {
      for (const auto& weak : c)
        if (auto obj = weak.lock()) obj->notify(sum);
    }
    return sum;
  }
  static void forget(container& c, const death_key& dead) {
    if constexpr (!Side::value) {
      if (auto it = find(c, dead); it != c.end()) c.erase(it);
    }
  }
};

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

// Operations timed between two clock reads, at least: the reads cost about 0.5 us on these
// machines and vary by about 0.1 us, too much for a batch of 10 operations (10 entries).
constexpr std::size_t min_timed_ops = 256;

// `n` resident entries (ids 0..n-1, owned here), probes for hits (random residents) and misses
// (1024 live objects or keys not in the container, ids from n + batch on), and a batch of
// min(n, 64) further objects (ids n..) for insert/erase/death. Below 64 entries, insert, erase
// and death run on `copies` containers of the same n entries each, so that a timed section
// holds at least min_timed_ops operations on containers of the size measured.
template <class Ops, class Side>
struct container_fixture {
  explicit container_fixture(std::size_t n)
      : batch(std::min<std::size_t>(n, 64)),
        copies(batch < 64 ? (min_timed_ops + batch - 1) / batch : 1),
        containers(copies),
        container(containers.front()) {
    for (std::size_t i = 0; i < n; ++i) {
      residents.push_back(make<item>(Side{}, i));
      for (auto& c : containers)
        Ops::insert(c, Ops::probe_of(i, residents.back()), residents.back());
    }
    for (auto p : probe_positions(n)) hits.push_back(Ops::probe_of(p, residents[p]));
    for (std::size_t j = 0; j < 1024; ++j) {
      strangers.push_back(make<item>(Side{}, n + batch + j));
      misses.push_back(Ops::probe_of(n + batch + j, strangers.back()));
    }
    for (std::size_t j = 0; j < batch; ++j) {
      batch_objects.push_back(make<item>(Side{}, n + j));
      batch_probes.push_back(Ops::probe_of(n + j, batch_objects.back()));
    }
  }
  std::size_t batch, copies;
  std::vector<object> residents, strangers, batch_objects;
  std::vector<typename Ops::container> containers;  // `copies` of them ...
  typename Ops::container& container;               // ... the first: lookups and iteration
  std::vector<typename Ops::probe> hits, misses, batch_probes;
};

template <template <class> class OpsOf, class Side>
auto& fixture(const benchmark::State& state) {
  return cached<container_fixture<OpsOf<Side>, Side>>(size_of(state));
}

template <template <class> class OpsOf, class Side>
void lookup(benchmark::State& state, Side, bool hit) {
  using Ops = OpsOf<Side>;
  auto& f = fixture<OpsOf, Side>(state);
  const auto& probes = hit ? f.hits : f.misses;
  const auto mask = probes.size() - 1;
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(Ops::lookup(f.container, probes[i++ & mask]));
  weakref_bench::set_ops(state, 1);
}

// Removes a batch just inserted (untimed): erases each entry, but a vector drops its tail
// rather than searching for it (at 1,000,000 entries the search would dominate the run).
template <class Ops, class Probes>
void undo_insert(typename Ops::container& c, const Probes& batch) {
  if constexpr (std::is_same_v<typename Ops::container, std::vector<std::weak_ptr<item>>>) {
    c.resize(c.size() - batch.size());
  } else {
    for (const auto& p : batch) Ops::erase(c, p);
  }
}

template <template <class> class OpsOf, class Side>
void insert_or_erase(benchmark::State& state, Side, bool timed_insert) {
  using Ops = OpsOf<Side>;
  auto& f = fixture<OpsOf, Side>(state);
  bool inserted = false;
  auto insert = [&] {
    for (auto& c : f.containers) {
      for (std::size_t j = 0; j < f.batch; ++j)
        Ops::insert(c, f.batch_probes[j], f.batch_objects[j]);
    }
    inserted = true;
  };
  auto undo = [&] {
    if (inserted) {
      for (auto& c : f.containers) undo_insert<Ops>(c, f.batch_probes);
    }
    inserted = false;
  };
  auto erase = [&] {
    for (auto& c : f.containers) {
      for (const auto& p : f.batch_probes) Ops::erase(c, p);
    }
    inserted = false;
  };
  const auto ops = f.batch * f.copies;
  if (timed_insert) {
    weakref_bench::run_batches(state, ops, undo, insert);
    undo();
  } else {
    weakref_bench::run_batches(state, ops, insert, erase);
  }
}

template <template <class> class OpsOf, class Side>
void iterate(benchmark::State& state, Side) {
  using Ops = OpsOf<Side>;
  const auto& f = fixture<OpsOf, Side>(state);
  for (auto _ : state) benchmark::DoNotOptimize(Ops::iterate(f.container));
  weakref_bench::set_ops(state, size_of(state));
}

// The atomic operations any container that removes entries by itself must add to the baseline's
// work per death (see death_floor): the death claims the object's list of weak references, posts
// the entry to its container, which takes the posts. Uncontended, as in death(): one word each.
struct delivery_words {
  std::atomic<std::uintptr_t> list{0}, inbox{0};
  void deliver() noexcept {
    list.fetch_or(1, std::memory_order_acquire);  // the death claims the object's list
    list.store(0, std::memory_order_release);
    inbox.fetch_add(1, std::memory_order_acq_rel);  // it posts the entry
    benchmark::DoNotOptimize(
        inbox.exchange(0, std::memory_order_acquire));  // the container takes it
  }
};

// `floor`: the baseline's work plus delivery_words::deliver() per death, on the baseline's side:
// the least a weak container pays for removing its entries itself.
template <template <class> class OpsOf, class Side>
void death(benchmark::State& state, Side side, bool floor = false) {
  using Ops = OpsOf<Side>;
  static delivery_words words;
  auto& f = fixture<OpsOf, Side>(state);
  const auto n = size_of(state);
  const auto ops = f.batch * f.copies;
  std::vector<object> owners(ops);  // batch j of copy c: owners[c * batch + j]
  std::vector<typename Ops::death_key> keys;
  auto make_batch = [&] {
    keys.clear();
    for (std::size_t i = 0; i < ops; ++i) {
      auto j = i % f.batch;
      owners[i] = make<item>(side, n + j);
      Ops::insert(f.containers[i / f.batch], Ops::probe_of(n + j, owners[i]), owners[i]);
      keys.push_back(Ops::death_key_of(n + j, owners[i]));
    }
  };
  auto release_batch = [&] {
    for (std::size_t i = 0; i < ops; ++i) {
      auto& c = f.containers[i / f.batch];
      owners[i].reset();
      if constexpr (Side::value) {
        benchmark::DoNotOptimize(c.size());  // applies the death
      } else {
        if (floor) words.deliver();
        Ops::forget(c, keys[i]);
      }
    }
  };
  weakref_bench::run_batches(state, ops, make_batch, release_batch);
  for (auto& c : f.containers) {
    if (c.size() != n) state.SkipWithError("entries left behind");
  }
}

// Lookup hits while a second thread releases objects: every 16th lookup replaces one batch
// entry with a new object and hands its only owner to the releaser thread.
template <class Side>
void lookup_during_deaths(benchmark::State& state, Side side) {
  using Ops = value_map_ops<Side>;
  auto& f = fixture<value_map_ops, Side>(state);
  std::mutex mutex;
  std::vector<object> handed;
  bool stop = false;
  std::thread releaser([&] {
    std::vector<object> mine;
    for (;;) {
      {
        std::lock_guard lock(mutex);
        if (stop && handed.empty()) return;
        mine.swap(handed);
      }
      if (mine.empty()) std::this_thread::yield();
      mine.clear();  // the deaths
    }
  });
  const auto mask = f.hits.size() - 1;
  std::size_t i = 0, replaced = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(Ops::lookup(f.container, f.hits[i++ & mask]));
    if ((i & 15) == 0) {
      auto obj = make<item>(side, replaced);
      Ops::assign(f.container, f.batch_probes[replaced++ % f.batch], obj);
      std::lock_guard lock(mutex);
      handed.push_back(std::move(obj));
    }
  }
  {
    std::lock_guard lock(mutex);
    stop = true;
  }
  releaser.join();
  for (const auto& p : f.batch_probes) Ops::erase(f.container, p);
  weakref_bench::set_ops(state, 1);
}

template <template <class> class OpsOf>
void register_container(const std::string& name) {
  auto manual_time = [](auto* b) { b->UseManualTime(); };
  register_pair(name + ".lookup_hit", [](auto& s, auto side) { lookup<OpsOf>(s, side, true); })
      .sizes()
      .apply([](auto* b) { b->Arg(10000)->Arg(30000)->Arg(100000); });  // every size, mid ones too
  register_pair(name + ".lookup_miss", [](auto& s, auto side) {
    lookup<OpsOf>(s, side, false);
  }).sizes();
  register_pair(name + ".insert", [](auto& s, auto side) { insert_or_erase<OpsOf>(s, side, true); })
      .sizes()
      .apply(manual_time);
  register_pair(name + ".erase", [](auto& s, auto side) { insert_or_erase<OpsOf>(s, side, false); })
      .sizes()
      .apply(manual_time);
  register_pair(name + ".iterate", [](auto& s, auto side) { iterate<OpsOf>(s, side); }).sizes();
  register_pair(name + ".death", [](auto& s, auto side) { death<OpsOf>(s, side); })
      .sizes()
      .apply(manual_time);
  // Not ours: the lower bound of C.death beside the same baseline (see death's `floor`).
  register_pair(
      name + ".death_floor",
      [](auto& s, auto side) { death<OpsOf>(s, weakref_bench::base{}, decltype(side)::value); })
      .sizes()
      .apply(manual_time);
}

void register_benchmarks() {
  register_container<value_map_ops>("weak_value_map");
  register_container<key_map_ops>("weak_key_map");
  register_container<set_ops>("weak_set");
  register_pair("mt.weak_value_map.lookup_during_deaths", [](auto& s, auto side) {
    lookup_during_deaths(s, side);
  }).sizes();
}

}  // namespace

int main(int argc, char** argv) {
  return weakref_bench::bench_main(argc, argv, register_benchmarks, weakref_bench::no_context);
}
