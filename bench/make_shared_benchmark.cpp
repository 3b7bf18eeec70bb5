// Benchmarks for weakref::make_shared, each beside its std baseline:
//   BM_WeakrefMakeSharedRelease<T> vs BM_StdMakeSharedRelease<T>   for int and a 64-byte type
//   BM_FinalizeCreateFire          vs BM_StdMakeSharedRelease<int>  make, finalize, drop (fires)
// The context also reports the bytes each object takes (one allocation, measured with a
// counting allocator through allocate_shared). tools/bench_ratios.py pairs and compares them.
//
// libstdc++ uses non-atomic reference counts while a program has a single thread, so main()
// starts a second (parked) thread before any timing: every number here is the multi-threaded
// cost users actually pay.
#include <benchmark/benchmark.h>

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "parked_thread.hpp"
#include "weakref/weakref.hpp"

namespace {

struct bytes64 {
  unsigned char bytes[64] = {};
};
static_assert(sizeof(bytes64) == 64);

template <class T>
void BM_WeakrefMakeSharedRelease(benchmark::State& state) {
  for (auto _ : state) {
    auto obj = weakref::make_shared<T>();
    benchmark::DoNotOptimize(obj);
  }
}
BENCHMARK_TEMPLATE(BM_WeakrefMakeSharedRelease, int);
BENCHMARK_TEMPLATE(BM_WeakrefMakeSharedRelease, bytes64);

template <class T>
void BM_StdMakeSharedRelease(benchmark::State& state) {
  for (auto _ : state) {
    auto obj = std::make_shared<T>();
    benchmark::DoNotOptimize(obj);
  }
}
BENCHMARK_TEMPLATE(BM_StdMakeSharedRelease, int);
BENCHMARK_TEMPLATE(BM_StdMakeSharedRelease, bytes64);

void bump(std::size_t* fired) { ++*fired; }

void BM_FinalizeCreateFire(benchmark::State& state) {
  std::size_t fired = 0;
  for (auto _ : state) {
    auto obj = weakref::make_shared<int>(1);
    weakref::finalize f(obj, bump, &fired);
    obj.reset();
  }
  if (fired != static_cast<std::size_t>(state.iterations()))
    state.SkipWithError("finalizers did not all run");
}
BENCHMARK(BM_FinalizeCreateFire);

// Counts the bytes requested through it (the whole block: control block and object).
std::size_t g_requested = 0;
template <class T>
struct counting_allocator {
  using value_type = T;
  counting_allocator() = default;
  template <class U>
  counting_allocator(const counting_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    g_requested += n * sizeof(T);
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  template <class U>
  friend bool operator==(const counting_allocator&, const counting_allocator<U>&) noexcept {
    return true;
  }
};

template <class T, class Make>
std::size_t bytes_per_object(Make make) {
  g_requested = 0;
  auto obj = make(counting_allocator<T>());
  return g_requested;
}

template <class T>
std::string bytes_report() {
  auto ours = bytes_per_object<T>([](auto a) { return weakref::allocate_shared<T>(a); });
  auto theirs = bytes_per_object<T>([](auto a) { return std::allocate_shared<T>(a); });
  return "weakref " + std::to_string(ours) + ", std " + std::to_string(theirs) + " (+" +
         std::to_string(ours - theirs) + ")";
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  parked_thread second_thread;
  report_threading_mode();
  benchmark::AddCustomContext("bytes_per_object<int>", bytes_report<int>());
  benchmark::AddCustomContext("bytes_per_object<bytes64>", bytes_report<bytes64>());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
