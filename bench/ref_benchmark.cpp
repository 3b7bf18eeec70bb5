// Benchmarks for ref, proxy and weak_method, each registered as a pair "<op>/ours" and
// "<op>/base" (see bench_support.hpp) beside its std::weak_ptr baseline:
//   ref.lock                ref::lock() of a live object     vs weak_ptr::lock()
//   ref.lock_dead           ... of a dead object             vs weak_ptr::lock()
//   ref.lock_tracked        ref::lock() of a live object the cycle collector tracks (its type
//                           has traverse: the lock reads the collector's verdict)
//                                                            vs weak_ptr::lock()
//   ref.copy                copy + destroy a ref             vs weak_ptr copy + destroy
//   ref.create              ref(obj), canonical ref exists   vs weak_ptr(obj)
//   ref.create_first        ref(obj), no ref yet (makes and drops the canonical one)
//   ref.create_callback     ref(obj, callback) + destroy     vs weak_ptr(obj)
//   proxy.access            proxy->get()                     vs lock, throw if dead, get()
//   weak_method.call        weak_method()                    vs lock, call if alive
//   death/k (k = 0, 1, 8)   make_shared, k callback refs, release (the k callbacks run)
//                           vs std::make_shared, k weak_ptrs, release, k std::function calls
//   mt.ref.lock             two threads lock refs to one object          (contended)
//   mt.ref.create_callback  two threads make and drop callback refs to one object (contended)
//   mt.floor.callback_ref   what any design pays for that (see callback_ref_floor) vs the same
//                           weak_ptr baseline: the lower bound of mt.ref.create_callback
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "bench_support.hpp"
#include "weakref/weakref.hpp"

namespace {

using weakref_bench::make;
using weakref_bench::register_pair;

struct widget {
  int value = 42;
  int get() const { return value; }
};

// weakref::ref<T> on our side, std::weak_ptr<T> on the baseline's.
template <class Side, class T>
using weak_t = std::conditional_t<Side::value, weakref::ref<T>, std::weak_ptr<T>>;

template <class Side>
void lock(benchmark::State& state, Side side, bool alive) {
  auto obj = make<widget>(side);
  weak_t<Side, widget> handle(obj);
  if (!alive) obj.reset();
  for (auto _ : state) {
    auto p = handle.lock();
    benchmark::DoNotOptimize(p);
  }
}

// Tracked by weakref::gc when made by weakref::make_shared (it has traverse).
struct tracked_widget {
  std::shared_ptr<tracked_widget> next;
  template <class V>
  void traverse(V& visit) {
    visit(next);
  }
};

template <class Side>
void lock_tracked(benchmark::State& state, Side side) {
  auto obj = make<tracked_widget>(side);
  weak_t<Side, tracked_widget> handle(obj);
  for (auto _ : state) {
    auto p = handle.lock();
    benchmark::DoNotOptimize(p);
  }
}

template <class Side>
void copy(benchmark::State& state, Side side) {
  auto obj = make<widget>(side);
  weak_t<Side, widget> handle(obj);
  for (auto _ : state) {
    weak_t<Side, widget> copy(handle);
    benchmark::DoNotOptimize(copy);
  }
}

// Creates and drops a handle per iteration; `canonical` keeps a callback-less ref alive
// first (Python: ref(o) is ref(o), so later refs find it).
template <class Side>
void create(benchmark::State& state, Side side, bool canonical, bool callback) {
  auto obj = make<widget>(side);
  std::optional<weak_t<Side, widget>> first;
  if (canonical) first.emplace(obj);
  int calls = 0;
  for (auto _ : state) {
    if constexpr (Side::value) {
      if (callback) {
        weakref::ref<widget> r(obj, [&calls] { ++calls; });
        benchmark::DoNotOptimize(r);
        continue;
      }
    }
    weak_t<Side, widget> r(obj);
    benchmark::DoNotOptimize(r);
  }
  benchmark::DoNotOptimize(calls);
}

template <class Side>
void proxy_access(benchmark::State& state, Side side) {
  auto obj = make<widget>(side);
  if constexpr (Side::value) {
    weakref::proxy<widget> p(obj);
    for (auto _ : state) benchmark::DoNotOptimize(p->get());
  } else {
    std::weak_ptr<widget> w(obj);
    for (auto _ : state) {
      auto locked = w.lock();
      if (!locked) throw std::runtime_error("dead");  // what proxy does
      benchmark::DoNotOptimize(locked->get());
    }
  }
}

template <class Side>
void weak_method_call(benchmark::State& state, Side side) {
  auto obj = make<widget>(side);
  if constexpr (Side::value) {
    weakref::weak_method get(obj, &widget::get);
    for (auto _ : state) benchmark::DoNotOptimize(get());
  } else {
    std::weak_ptr<widget> w(obj);
    for (auto _ : state) {
      std::optional<int> result;
      if (auto locked = w.lock()) result = locked->get();
      benchmark::DoNotOptimize(result);
    }
  }
}

// Per iteration: make an object, register k callbacks, release it (the k callbacks run), drop
// the handles. The baseline has no death hook, so it calls k std::functions by hand.
template <class Side>
void death(benchmark::State& state, Side side) {
  const auto k = static_cast<std::size_t>(state.range(0));
  std::size_t calls = 0;
  std::vector<weak_t<Side, int>> handles;
  std::vector<std::function<void()>> by_hand;
  handles.reserve(k);
  by_hand.reserve(k);
  for (auto _ : state) {
    auto obj = make<int>(side, 1);
    for (std::size_t i = 0; i < k; ++i) {
      if constexpr (Side::value) {
        handles.emplace_back(obj, [&calls] { ++calls; });
      } else {
        handles.emplace_back(obj);
        by_hand.emplace_back([&calls] { ++calls; });
      }
    }
    obj.reset();
    for (auto& f : by_hand) f();
    by_hand.clear();
    handles.clear();
  }
  if (calls != k * state.iterations()) state.SkipWithError("callbacks did not all run");
}

// --- contended: both benchmark threads use handles to one object ---

template <class Side>
std::shared_ptr<widget>& shared_object(Side side) {
  static auto obj = make<widget>(side);  // one per side, made by whichever thread comes first
  return obj;
}

template <class Side>
void contended_lock(benchmark::State& state, Side side) {
  weak_t<Side, widget> handle(shared_object(side));
  for (auto _ : state) {
    auto p = handle.lock();
    benchmark::DoNotOptimize(p);
  }
}

template <class Side>
void contended_create_callback(benchmark::State& state, Side side) {
  const auto& obj = shared_object(side);
  std::atomic<int> calls{0};
  for (auto _ : state) {
    if constexpr (Side::value) {
      weakref::ref<widget> r(obj, [&calls] { calls.fetch_add(1); });
      benchmark::DoNotOptimize(r);
    } else {
      std::weak_ptr<widget> w(obj);
      benchmark::DoNotOptimize(w);
    }
  }
}

// The least any weak reference with a callback costs beside a std::weak_ptr, by hand: the
// node that stores the callback (new + delete of a node's size), its own weak_ptr (lock()
// must cost what weak_ptr::lock() costs), one atomic read-modify-write on a word inside the
// object's allocation (as our header is) to link it into the object's list, since threads link
// at once, and one on the node to decide who frees it when it is dropped. Unlinking is left
// out (a design could defer it), so this bounds every design from below. The base side is
// mt.ref.create_callback's baseline.
struct floor_object {
  std::atomic<std::uintptr_t> list{0};
};

template <class Side>
void callback_ref_floor(benchmark::State& state, Side) {
  static const auto obj = std::make_shared<floor_object>();
  struct node {
    std::weak_ptr<floor_object> owner;
    std::atomic<std::size_t> handles{1};
    void* links[2] = {};
    char callback[48] = {};  // callback_node's size, less the fields above and a vtable
  };
  for (auto _ : state) {
    if constexpr (Side::value) {
      auto* n = new node{obj};
      obj->list.fetch_add(1, std::memory_order_acq_rel);  // link
      benchmark::DoNotOptimize(n);
      if (n->handles.fetch_sub(1, std::memory_order_acq_rel) == 1) delete n;  // the last handle
    } else {
      std::weak_ptr<floor_object> w(obj);
      benchmark::DoNotOptimize(w);
    }
  }
}

void register_benchmarks() {
  register_pair("ref.lock", [](auto& s, auto side) { lock(s, side, true); });
  register_pair("ref.lock_dead", [](auto& s, auto side) { lock(s, side, false); });
  register_pair("ref.lock_tracked", [](auto& s, auto side) { lock_tracked(s, side); });
  register_pair("ref.copy", [](auto& s, auto side) { copy(s, side); });
  register_pair("ref.create", [](auto& s, auto side) { create(s, side, true, false); });
  register_pair("ref.create_first", [](auto& s, auto side) { create(s, side, false, false); });
  register_pair("ref.create_callback", [](auto& s, auto side) { create(s, side, false, true); });
  register_pair("proxy.access", [](auto& s, auto side) { proxy_access(s, side); });
  register_pair("weak_method.call", [](auto& s, auto side) { weak_method_call(s, side); });
  register_pair("death", [](auto& s, auto side) { death(s, side); }).apply([](auto* b) {
    b->Arg(0)->Arg(1)->Arg(8);
  });
  register_pair("mt.ref.lock", [](auto& s, auto side) {
    contended_lock(s, side);
  }).apply([](auto* b) { b->Threads(2); });
  register_pair("mt.ref.create_callback", [](auto& s, auto side) {
    contended_create_callback(s, side);
  }).apply([](auto* b) { b->Threads(2); });
  register_pair("mt.floor.callback_ref", [](auto& s, auto side) {
    callback_ref_floor(s, side);
  }).apply([](auto* b) { b->Threads(2); });
}

std::vector<std::pair<std::string, std::string>> context() {
  return {{"sizeof(weakref::ref<T>)", std::to_string(sizeof(weakref::ref<int>))},
          {"sizeof(std::weak_ptr<T>)", std::to_string(sizeof(std::weak_ptr<int>))}};
}

}  // namespace

int main(int argc, char** argv) {
  return weakref_bench::bench_main(argc, argv, register_benchmarks, context);
}
