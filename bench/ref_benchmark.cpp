// Benchmarks for weakref::ref, proxy and weak_method, each beside its std::weak_ptr baseline:
//   BM_RefLock               vs BM_StdWeakPtrLock           lock a live object
//   BM_RefLockDead           vs BM_StdWeakPtrLockDead       lock a dead object
//   BM_RefCopy               vs BM_StdWeakPtrCopy           copy and destroy a weak handle
//   BM_RefCreate             vs BM_StdWeakPtrCreate         create a callback-less handle (the
//                                                           canonical ref already exists)
//   BM_RefCreateWithCallback vs BM_StdWeakPtrCreate         allocates a node per ref
//   BM_ProxyArrow            vs BM_SharedPtrArrowThroughLock
//   BM_WeakMethodCall        vs BM_StdWeakPtrLockCall
//   BM_DeathWithCallbacks/k  vs BM_StdMakeSharedRelease     make_shared, k callback refs, drop
// tools/bench_ratios.py pairs them and prints the ratios.
//
// libstdc++ uses non-atomic reference counts while a program has a single thread, so main()
// starts a second (parked) thread before any timing: every number here is the multi-threaded
// cost users actually pay.
#include <benchmark/benchmark.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "parked_thread.hpp"
#include "weakref/weakref.hpp"

namespace {

struct widget {
  int value = 42;
  int get() const { return value; }
};

// --- lock ---

void BM_RefLock(benchmark::State& state) {
  auto obj = weakref::make_shared<widget>();
  weakref::ref<widget> r(obj);
  for (auto _ : state) {
    auto p = r.lock();
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_RefLock);

void BM_StdWeakPtrLock(benchmark::State& state) {
  auto obj = std::make_shared<widget>();
  std::weak_ptr<widget> w(obj);
  for (auto _ : state) {
    auto p = w.lock();
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_StdWeakPtrLock);

void BM_RefLockDead(benchmark::State& state) {
  auto obj = weakref::make_shared<widget>();
  weakref::ref<widget> r(obj);
  obj.reset();
  for (auto _ : state) {
    auto p = r.lock();
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_RefLockDead);

void BM_StdWeakPtrLockDead(benchmark::State& state) {
  auto obj = std::make_shared<widget>();
  std::weak_ptr<widget> w(obj);
  obj.reset();
  for (auto _ : state) {
    auto p = w.lock();
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_StdWeakPtrLockDead);

// --- copy ---

void BM_RefCopy(benchmark::State& state) {
  auto obj = weakref::make_shared<widget>();
  weakref::ref<widget> r(obj);
  for (auto _ : state) {
    weakref::ref<widget> copy(r);
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_RefCopy);

void BM_StdWeakPtrCopy(benchmark::State& state) {
  auto obj = std::make_shared<widget>();
  std::weak_ptr<widget> w(obj);
  for (auto _ : state) {
    std::weak_ptr<widget> copy(w);
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_StdWeakPtrCopy);

// --- create ---

void BM_RefCreate(benchmark::State& state) {
  auto obj = weakref::make_shared<widget>();
  weakref::ref<widget> canonical(obj);  // so each iteration finds it, as ref(o) is ref(o)
  for (auto _ : state) {
    weakref::ref<widget> r(obj);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_RefCreate);

void BM_StdWeakPtrCreate(benchmark::State& state) {
  auto obj = std::make_shared<widget>();
  for (auto _ : state) {
    std::weak_ptr<widget> w(obj);
    benchmark::DoNotOptimize(w);
  }
}
BENCHMARK(BM_StdWeakPtrCreate);

void BM_RefCreateWithCallback(benchmark::State& state) {
  auto obj = weakref::make_shared<widget>();
  int calls = 0;
  for (auto _ : state) {
    weakref::ref<widget> r(obj, [&calls] { ++calls; });
    benchmark::DoNotOptimize(r);
  }
  benchmark::DoNotOptimize(calls);
}
BENCHMARK(BM_RefCreateWithCallback);

// --- use through the handle ---

void BM_ProxyArrow(benchmark::State& state) {
  auto obj = weakref::make_shared<widget>();
  weakref::proxy<widget> p(obj);
  for (auto _ : state) {
    benchmark::DoNotOptimize(p->get());
  }
}
BENCHMARK(BM_ProxyArrow);

void BM_SharedPtrArrowThroughLock(benchmark::State& state) {
  auto obj = std::make_shared<widget>();
  std::weak_ptr<widget> w(obj);
  for (auto _ : state) {
    auto locked = w.lock();
    if (!locked) throw std::runtime_error("dead");  // what proxy does
    benchmark::DoNotOptimize(locked->get());
  }
}
BENCHMARK(BM_SharedPtrArrowThroughLock);

void BM_WeakMethodCall(benchmark::State& state) {
  auto obj = weakref::make_shared<widget>();
  weakref::weak_method get(obj, &widget::get);
  for (auto _ : state) {
    benchmark::DoNotOptimize(get());
  }
}
BENCHMARK(BM_WeakMethodCall);

void BM_StdWeakPtrLockCall(benchmark::State& state) {
  auto obj = std::make_shared<widget>();
  std::weak_ptr<widget> w(obj);
  for (auto _ : state) {
    std::optional<int> result;
    if (auto locked = w.lock()) result = locked->get();
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_StdWeakPtrLockCall);

// --- death ---

// Per iteration: make an object, register k callback refs, drop the object (the k callbacks
// run), drop the refs. k = 0 is weakref::make_shared + release.
void BM_DeathWithCallbacks(benchmark::State& state) {
  const auto k = static_cast<std::size_t>(state.range(0));
  std::vector<weakref::ref<int>> refs;
  refs.reserve(k);
  std::size_t calls = 0;
  for (auto _ : state) {
    auto obj = weakref::make_shared<int>(1);
    for (std::size_t i = 0; i < k; ++i) refs.emplace_back(obj, [&calls] { ++calls; });
    obj.reset();
    refs.clear();
  }
  if (calls != k * state.iterations()) state.SkipWithError("callbacks did not all run");
}
BENCHMARK(BM_DeathWithCallbacks)->Arg(0)->Arg(1)->Arg(8);

void BM_StdMakeSharedRelease(benchmark::State& state) {
  for (auto _ : state) {
    auto obj = std::make_shared<int>(1);
    benchmark::DoNotOptimize(obj);
  }
}
BENCHMARK(BM_StdMakeSharedRelease);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  parked_thread second_thread;
  report_threading_mode();
  benchmark::AddCustomContext("sizeof(weakref::ref<T>)", std::to_string(sizeof(weakref::ref<int>)));
  benchmark::AddCustomContext("sizeof(std::weak_ptr<T>)",
                              std::to_string(sizeof(std::weak_ptr<int>)));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
