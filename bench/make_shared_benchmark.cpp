// Benchmarks for object creation and release and for finalize, each registered as a pair
// "<op>/ours" and "<op>/base" (see bench_support.hpp):
//   make_shared.int       weakref::make_shared<int>() + release   vs std::make_shared<int>()
//   make_shared.bytes64   ... of a 64-byte type
//   finalize.create_fire  make_shared, finalize(obj, f, arg), release (f runs)
//                         vs std::make_shared, release, call a std::function by hand
//   mt.make_shared        two threads create and release objects   (contended allocator)
// Bytes per object are counted by memory_report.cpp.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <functional>
#include <memory>

#include "bench_support.hpp"
#include "weakref/weakref.hpp"

namespace {

using weakref_bench::make;
using weakref_bench::register_pair;

struct bytes64 {
  unsigned char bytes[64] = {};
};
static_assert(sizeof(bytes64) == 64);

template <class T, class Side>
void make_release(benchmark::State& state, Side side) {
  for (auto _ : state) {
    auto obj = make<T>(side);
    benchmark::DoNotOptimize(obj);
  }
}

void bump(std::size_t* fired) { ++*fired; }

template <class Side>
void finalize_create_fire(benchmark::State& state, Side side) {
  std::size_t fired = 0;
  for (auto _ : state) {
    auto obj = make<int>(side, 1);
    if constexpr (Side::value) {
      weakref::finalize f(obj, bump, &fired);
      obj.reset();
    } else {
      std::function<void()> f = [&fired] { bump(&fired); };
      obj.reset();
      f();
    }
  }
  if (fired != static_cast<std::size_t>(state.iterations()))
    state.SkipWithError("finalizers did not all run");
}

void register_benchmarks() {
  register_pair("make_shared.int", [](auto& s, auto side) { make_release<int>(s, side); });
  register_pair("make_shared.bytes64", [](auto& s, auto side) { make_release<bytes64>(s, side); });
  register_pair("finalize.create_fire", [](auto& s, auto side) { finalize_create_fire(s, side); });
  register_pair("mt.make_shared", [](auto& s, auto side) {
    make_release<int>(s, side);
  }).apply([](auto* b) { b->Threads(2); });
}

}  // namespace

int main(int argc, char** argv) {
  return weakref_bench::bench_main(argc, argv, register_benchmarks, weakref_bench::no_context);
}
