// bench/bench_support.hpp — what every weakref benchmark binary shares:
//
// - pairs: each operation is registered twice from one body, as "<op>/ours" (weakref) and
//   "<op>/base" (its std or Boost baseline), so both sides run the same code and the same
//   sizes. tools/perf_report.py runs each pair's repetitions interleaved and divides.
// - a parked second thread, started before any timing: libstdc++ skips atomic reference counts
//   while a program has a single thread, which would flatter std::shared_ptr. Setting
//   WEAKREF_BENCH_SINGLE_THREADED=1 skips it (the report's single-threaded column); the
//   context keys "mode" and "__libc_single_threaded" say which mode a run was in.
// - a fixture cache (so 1,000,000-entry containers are built once per pair, not per run) and
//   batch timing in thread CPU time for operations that need untimed setup around them.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "weakref/make_shared.hpp"

#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define WEAKREF_BENCH_HAS_SINGLE_THREADED 1
#endif

namespace weakref_bench {

// --- sides of a pair ---

using ours = std::true_type;   // weakref
using base = std::false_type;  // the baseline

// weakref::make_shared for our side, std::make_shared for the baseline.
template <class T, bool Ours, class... Args>
std::shared_ptr<T> make(std::bool_constant<Ours>, Args&&... args) {
  if constexpr (Ours) {
    return weakref::make_shared<T>(std::forward<Args>(args)...);
  } else {
    return std::make_shared<T>(std::forward<Args>(args)...);
  }
}

// The two registered benchmarks of one operation; apply() configures both alike.
class bench_pair {
 public:
  explicit bench_pair(std::vector<benchmark::internal::Benchmark*> sides)
      : sides_(std::move(sides)) {}
  template <class Configure>
  bench_pair& apply(Configure configure) {
    for (auto* b : sides_) configure(b);
    return *this;
  }
  bench_pair& sizes() {  // the container sizes of the report
    return apply([](auto* b) { b->Arg(10)->Arg(1000)->Arg(1000000); });
  }

 private:
  std::vector<benchmark::internal::Benchmark*> sides_;
};

// Registers body(state, ours{}) as "<op>/ours" and body(state, base{}) as "<op>/base".
template <class Body>
bench_pair register_pair(const std::string& op, Body body) {
  auto* a = benchmark::RegisterBenchmark((op + "/ours").c_str(),
                                         [body](benchmark::State& s) { body(s, ours{}); });
  auto* b = benchmark::RegisterBenchmark((op + "/base").c_str(),
                                         [body](benchmark::State& s) { body(s, base{}); });
  return bench_pair({a, b});
}

inline std::size_t size_of(const benchmark::State& state) {
  return static_cast<std::size_t>(state.range(0));
}

// Operations per iteration: the report divides by the "ops" counter.
inline void set_ops(benchmark::State& state, std::size_t ops) {
  state.counters["ops"] = static_cast<double>(ops);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(ops));
}

// --- fixture cache ---

// The last two fixtures built (a pair's two sides), reused by the next run with the same type
// and size: a pair's interleaved repetitions at 1,000,000 entries build each side once.
template <class Fixture>
Fixture& cached(std::size_t n) {
  struct slot {
    const void* tag;
    std::size_t n;
    std::shared_ptr<void> fixture;
  };
  static std::vector<slot> slots;  // newest last; benchmarks run on one thread
  static const char tag = 0;       // one per Fixture type
  auto hit = std::find_if(slots.begin(), slots.end(),
                          [&](const slot& s) { return s.tag == &tag && s.n == n; });
  if (hit == slots.end()) {
    if (slots.size() == 2) slots.erase(slots.begin());  // free the oldest before building
    slots.push_back({&tag, n, std::make_shared<Fixture>(n)});
  } else {
    std::rotate(hit, hit + 1, slots.end());
  }
  return *static_cast<Fixture*>(slots.back().fixture.get());
}

// --- batch timing ---

// This thread's CPU time in seconds (a busy machine preempts short sections, so wall time
// would mostly measure other processes). Falls back to steady_clock.
inline double thread_seconds() {
#ifdef CLOCK_THREAD_CPUTIME_ID
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
#else
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
#endif
}

// What two back-to-back thread_seconds() calls measure (subtracted from each timed section).
inline double clock_overhead() {
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

// For benchmarks registered with UseManualTime(): each iteration runs `untimed()`, then times
// `timed()` in thread CPU time; `ops` operations per iteration.
template <class Untimed, class Timed>
void run_batches(benchmark::State& state, std::size_t ops, Untimed untimed, Timed timed) {
  clock_overhead();
  for (auto _ : state) {
    untimed();
    double start = thread_seconds();
    timed();
    double stop = thread_seconds();
    state.SetIterationTime(std::max(0.0, stop - start - clock_overhead()));
  }
  set_ops(state, ops);
}

// --- threading mode ---

inline bool single_threaded_requested() {
  const char* env = std::getenv("WEAKREF_BENCH_SINGLE_THREADED");
  return env && *env && std::string(env) != "0";
}

// A second thread, parked until the benchmarks are done, so refcounts are atomic.
class parked_thread {
 public:
  parked_thread()
      : thread_([this] {
          std::unique_lock lock(mutex_);
          wake_.wait(lock, [this] { return stop_; });
        }) {}
  parked_thread(const parked_thread&) = delete;
  parked_thread& operator=(const parked_thread&) = delete;
  ~parked_thread() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it uses exist
};

// Records the threading mode in the benchmark context (call after the thread started).
inline void report_threading_mode() {
#ifdef WEAKREF_BENCH_HAS_SINGLE_THREADED
  benchmark::AddCustomContext(
      "mode", __libc_single_threaded ? "single-threaded (atomic refcounts skipped by libstdc++)"
                                     : "multi-threaded (second thread started: atomic refcounts)");
  benchmark::AddCustomContext("__libc_single_threaded", std::to_string(__libc_single_threaded));
#else
  benchmark::AddCustomContext("mode", "multi-threaded (second thread started: atomic refcounts)");
#endif
}

// main() of every benchmark binary: registers, starts the parked thread (unless
// WEAKREF_BENCH_SINGLE_THREADED is set), adds `context()`'s key/value pairs, runs.
template <class Register, class Context>
int bench_main(int argc, char** argv, Register register_benchmarks, Context context) {
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::optional<parked_thread> second_thread;
  if (!single_threaded_requested()) second_thread.emplace();
  report_threading_mode();
  for (const auto& [key, value] : context()) benchmark::AddCustomContext(key, value);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

inline std::vector<std::pair<std::string, std::string>> no_context() { return {}; }

}  // namespace weakref_bench
