// weakref_soak — a long-running stress test for leaks and unbounded growth.
//
// Worker threads make objects (some in two-object cycles only the collector frees), put them in
// a shared weak_set, weak_key_map and weak_value_map, take refs with callbacks, proxies, weak
// methods and finalizers to them, hand strong references to each other through a shared table
// (so objects die on any thread), lock and drop. A collector thread calls gc::collect(). The
// main thread prints the resident set size (/proc/self/statm) every --report seconds and fails
// if, after the warm-up, it exceeds the RSS at the end of the warm-up by more than
// --max-growth-mb. At the end everything is dropped and collected: no object may be left alive,
// and the containers must be empty; under ASan, LeakSanitizer then checks the rest.
//
//   weakref_soak [--seconds S] [--threads T] [--report S] [--warmup S] [--max-growth-mb M]
//
// Defaults: 10 s, 4 threads, a report every 5 s, warm-up a fifth of the run (at most 60 s),
// growth bound 64 MiB (0 turns the bound off; sanitizer builds' allocators keep a quarantine,
// so give them a long warm-up). ctest runs a 3-second smoke run; the long mode is in README
// ("Testing"). Exit status 0 when every check passed.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "weakref/weakref.hpp"

namespace {

std::atomic<long> g_alive{0};      // items constructed and not yet destroyed
std::atomic<long> g_callbacks{0};  // ref/proxy/weak_method callbacks run
std::atomic<long> g_finalized{0};  // finalizers run
std::atomic<long> g_ops{0};        // worker iterations
std::atomic<long> g_collected{0};  // objects freed by gc::collect()
std::atomic<bool> g_stop{false};

// A tracked object. `next` is written under the item's mutex, which traverse takes too (a
// collection on another thread may traverse the item as soon as it exists: docs/reference/gc.md,
// "Threads").
struct item {
  explicit item(std::uint64_t i) : id(i) { g_alive.fetch_add(1, std::memory_order_relaxed); }
  ~item() { g_alive.fetch_sub(1, std::memory_order_relaxed); }
  item(const item&) = delete;
  item& operator=(const item&) = delete;
  std::uint64_t value() const { return id; }
  void set_next(std::shared_ptr<item> n) {
    std::lock_guard lock(mutex);
    next = std::move(n);
  }
  template <class V>
  void traverse(V& visit) {
    std::lock_guard lock(mutex);
    visit("next", next);
  }
  const std::uint64_t id;
  std::mutex mutex;
  std::shared_ptr<item> next;
  std::string payload = std::string(48, 'x');  // a heap allocation per item
};
using item_ptr = std::shared_ptr<item>;

// The shared containers: used under their mutex; their members die on any thread.
struct shared_state {
  std::mutex set_mutex, keys_mutex, values_mutex, slots_mutex;
  weakref::weak_set<item> set;
  weakref::weak_key_map<item, std::uint64_t> keys;
  weakref::weak_value_map<std::uint64_t, item> values;
  std::array<item_ptr, 256> slots;  // strong references handed between threads
};

void count_finalizer(std::uint64_t) { g_finalized.fetch_add(1, std::memory_order_relaxed); }

void worker(shared_state& s, unsigned seed) {
  std::mt19937_64 rng(seed);
  auto chance = [&](unsigned percent) { return rng() % 100 < percent; };
  std::vector<item_ptr> strong(64);           // recent objects, owned here
  std::vector<weakref::ref<item>> refs(256);  // recent refs (half with callbacks)
  std::vector<std::optional<weakref::proxy<item>>> proxies(32);  // recent proxies
  std::vector<std::optional<weakref::weak_method<item, std::uint64_t>>> methods(32);
  std::vector<weakref::finalize> finalizers(32);
  std::uint64_t next_id = std::uint64_t{seed} << 40;
  auto on_death = [] { g_callbacks.fetch_add(1, std::memory_order_relaxed); };
  while (!g_stop.load(std::memory_order_relaxed)) {
    g_ops.fetch_add(1, std::memory_order_relaxed);
    auto x = weakref::make_shared<item>(next_id++);
    if (chance(10)) {  // a two-object cycle: garbage once the last outside owner goes
      auto y = weakref::make_shared<item>(next_id++);
      x->set_next(y);
      y->set_next(x);
    }
    if (chance(50)) {
      std::lock_guard lock(s.set_mutex);
      s.set.add(x);
    }
    if (chance(40)) {
      std::lock_guard lock(s.keys_mutex);
      s.keys.insert_or_assign(x, x->id);
    }
    if (chance(40)) {
      std::lock_guard lock(s.values_mutex);
      s.values.insert_or_assign(x->id % 4096, x);
    }
    auto& r = refs[rng() % refs.size()];
    r = chance(50) ? weakref::ref<item>(x, on_death) : weakref::ref<item>(x);
    if (chance(10)) proxies[rng() % proxies.size()].emplace(x, on_death);
    if (chance(10)) {
      methods[rng() % methods.size()].emplace(x, &item::value, on_death);
    }
    if (chance(5))
      finalizers[rng() % finalizers.size()] = weakref::finalize(x, count_finalizer, x->id);
    if (chance(20)) {  // hand it to another thread (and maybe take one, which then dies here)
      item_ptr taken;
      {
        std::lock_guard lock(s.slots_mutex);
        taken = std::exchange(s.slots[rng() % s.slots.size()], x);
      }
    }
    strong[rng() % strong.size()] = std::move(x);  // drops an older object (maybe its last owner)

    // Lock and drop.
    if (auto y = refs[rng() % refs.size()].lock()) {
      if (y->id == 0) std::abort();
    }
    try {
      auto& p = proxies[rng() % proxies.size()];
      if (p && p->alive() && (*p)->id == 0) std::abort();
    } catch (const weakref::reference_error&) {  // died between alive() and ->
    }
    if (auto& m = methods[rng() % methods.size()]) (void)(*m)();
    if (chance(5)) {
      std::lock_guard lock(s.values_mutex);
      (void)s.values.get(rng() % 4096);
    }
    if (chance(5)) {
      std::lock_guard lock(s.keys_mutex);
      if (auto& y = strong[rng() % strong.size()]) (void)s.keys.contains(y);
    }
    if (chance(1)) {
      std::lock_guard lock(s.set_mutex);
      std::size_t n = 0;
      for (const auto& member : s.set) n += member != nullptr;
      (void)n;
    }
    if (chance(2)) strong[rng() % strong.size()].reset();
  }
}

void collector() {
  while (!g_stop.load(std::memory_order_relaxed)) {
    g_collected.fetch_add(static_cast<long>(weakref::gc::collect()), std::memory_order_relaxed);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Resident set size in MiB (/proc/self/statm's second field is in pages).
double rss_mib() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

double arg(int argc, char** argv, std::string_view name, double fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return std::atof(argv[i + 1]);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; i += 2) {
    std::string_view a = argv[i];
    if (i + 1 >= argc || (a != "--seconds" && a != "--threads" && a != "--report" &&
                          a != "--warmup" && a != "--max-growth-mb")) {
      std::fprintf(stderr,
                   "usage: %s [--seconds S] [--threads T] [--report S] [--warmup S] "
                   "[--max-growth-mb M]\n",
                   argv[0]);
      return 2;
    }
  }
  const double seconds = arg(argc, argv, "--seconds", 10);
  const int threads = std::max(1, static_cast<int>(arg(argc, argv, "--threads", 4)));
  const double report = std::max(0.1, arg(argc, argv, "--report", 5));
  const double warmup = arg(argc, argv, "--warmup", std::min(60.0, seconds / 5));
  const double max_growth = arg(argc, argv, "--max-growth-mb", 64);
  std::printf("soak: %g s, %d threads, warm-up %g s, growth bound %g MiB\n", seconds, threads,
              warmup, max_growth);

  bool ok = true;
  {
    shared_state s;
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) pool.emplace_back(worker, std::ref(s), 1000u + i);
    pool.emplace_back(collector);

    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };
    double baseline = -1, peak = 0;
    double next_report = report;
    while (elapsed() < seconds) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      double t = elapsed();
      if (baseline < 0 && t >= warmup) {
        baseline = rss_mib();
        std::printf("soak: t=%.0f s warm-up over, baseline rss %.1f MiB\n", t, baseline);
      }
      if (t >= next_report || t >= seconds) {
        next_report += report;
        double rss = rss_mib();
        if (baseline >= 0) peak = std::max(peak, rss);
        std::printf(
            "soak: t=%.0f s rss %.1f MiB ops %ld alive %ld callbacks %ld finalized %ld "
            "collected %ld\n",
            t, rss, g_ops.load(), g_alive.load(), g_callbacks.load(), g_finalized.load(),
            g_collected.load());
        std::fflush(stdout);
        if (baseline >= 0 && max_growth > 0 && rss > baseline + max_growth) {
          std::printf("soak: FAIL: rss %.1f MiB exceeds baseline %.1f + %g MiB\n", rss, baseline,
                      max_growth);
          ok = false;
          break;
        }
      }
    }
    g_stop = true;
    for (auto& t : pool) t.join();
    if (baseline >= 0) {
      std::printf("soak: rss baseline %.1f MiB, peak after warm-up %.1f MiB (growth %.1f)\n",
                  baseline, peak, peak - baseline);
    }

    // Everything goes: the threads' own references went with them; now the slots, then cycles.
    for (auto& slot : s.slots) slot.reset();
    g_collected += static_cast<long>(weakref::gc::collect());
    std::size_t set_size, keys_size, values_size;
    {
      std::lock_guard l1(s.set_mutex), l2(s.keys_mutex), l3(s.values_mutex);
      set_size = s.set.size();
      keys_size = s.keys.size();
      values_size = s.values.size();
    }
    std::printf(
        "soak: end: ops %ld alive %ld callbacks %ld finalized %ld collected %ld, "
        "containers %zu %zu %zu\n",
        g_ops.load(), g_alive.load(), g_callbacks.load(), g_finalized.load(), g_collected.load(),
        set_size, keys_size, values_size);
    if (g_alive.load() != 0 || set_size || keys_size || values_size ||
        !weakref::gc::get_objects().empty()) {
      std::printf("soak: FAIL: objects left alive or entries left in the containers\n");
      ok = false;
    }
  }
  std::printf("soak: %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
