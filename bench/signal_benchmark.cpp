// weakref::signal against its two baselines, each registered as a pair (see bench_support.hpp),
// at 10, 1,000 and 1,000,000 observers, each an `item` whose slot calls item::notify:
//   signal.<op>.vs_loop       the hand-written bus: a std::vector<std::weak_ptr<item>>, emitted
//                             with `for (auto& w : v) if (auto p = w.lock()) p->notify(sum)`
//   signal.<op>.vs_signals2   boost::signals2::signal, one slot per observer tracking it with
//                             track_foreign(std::weak_ptr) (the pattern of signals2_benchmark)
// Operations:
//   emit        one emission to n live observers (ops = n)
//   connect     64 more observers connected (then disconnected, untimed)
//   disconnect  64 observers disconnected explicitly (connected again, untimed); the
//               hand-written bus erases each from its vector, found from the back
//   emit_dying  64 observers die, then one emission (64 fresh ones connected, untimed); the
//               hand-written bus erases its expired entries when it meets them (ops = n)
// Built only when CMake finds Boost (tools/perf_report.sh installs libboost-dev).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <boost/signals2.hpp>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "bench_support.hpp"
#include "items.hpp"
#include "weakref/signal.hpp"

namespace {

using weakref_bench::item;
using weakref_bench::register_pair;
using weakref_bench::size_of;

enum class impl { ours, loop, signals2 };
constexpr std::size_t batch = 64;

template <impl I>
std::shared_ptr<item> make_item(std::uint64_t id) {
  if constexpr (I == impl::ours) {
    return weakref::make_shared<item>(id);
  } else {
    return std::make_shared<item>(id);
  }
}

using boost_signal = boost::signals2::signal<void(std::uint64_t&)>;

// One event bus of each kind, behind the same four operations.
template <impl I>
struct bus;

template <>
struct bus<impl::ours> {
  using handle = weakref::connection;
  handle connect(const std::shared_ptr<item>& obj) { return sig.connect(obj, &item::notify); }
  void disconnect(handle& h) { h.disconnect(); }
  void emit(std::uint64_t& sum) { sig(sum); }
  void emit_pruning(std::uint64_t& sum) { sig(sum); }  // the signal prunes by itself
  weakref::signal<void(std::uint64_t&)> sig;
};

template <>
struct bus<impl::loop> {
  using handle = std::weak_ptr<item>;
  handle connect(const std::shared_ptr<item>& obj) {
    observers.push_back(obj);
    return obj;
  }
  // Erases by owner identity, searching from the back: the benchmarks disconnect observers
  // they just connected, so this stays O(batch) instead of O(n) per call.
  void disconnect(handle& h) {
    auto same = [&](const std::weak_ptr<item>& w) {
      return !w.owner_before(h) && !h.owner_before(w);
    };
    auto it = std::find_if(observers.rbegin(), observers.rend(), same);
    if (it != observers.rend()) observers.erase(std::next(it).base());
  }
  void emit(std::uint64_t& sum) {
    for (auto& w : observers) {
      if (auto p = w.lock()) p->notify(sum);
    }
  }
  // What a real hand-written bus must do once observers can die: drop the expired entries.
  void emit_pruning(std::uint64_t& sum) {
    bool dead = false;
    for (auto& w : observers) {
      if (auto p = w.lock()) {
        p->notify(sum);
      } else {
        dead = true;
      }
    }
    if (dead) std::erase_if(observers, [](const std::weak_ptr<item>& w) { return w.expired(); });
  }
  std::vector<std::weak_ptr<item>> observers;
};

template <>
struct bus<impl::signals2> {
  using handle = boost::signals2::connection;
  handle connect(const std::shared_ptr<item>& obj) {
    const item* raw = obj.get();
    return sig.connect(boost_signal::slot_type([raw](std::uint64_t& sum) {
                         raw->notify(sum);
                       }).track_foreign(std::weak_ptr<item>(obj)));
  }
  void disconnect(handle& h) { h.disconnect(); }
  void emit(std::uint64_t& sum) { sig(sum); }
  void emit_pruning(std::uint64_t& sum) { sig(sum); }
  boost_signal sig;
};

template <impl I>
struct fixture {
  explicit fixture(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      observers.push_back(make_item<I>(i));
      bus.connect(observers.back());
    }
    for (std::size_t j = 0; j < batch; ++j) extra.push_back(make_item<I>(n + j));
  }
  std::vector<std::shared_ptr<item>> observers;
  std::vector<std::shared_ptr<item>> extra;
  struct bus<I> bus;
};

template <impl I>
void emit(benchmark::State& state) {
  auto& f = weakref_bench::cached<fixture<I>>(size_of(state));
  for (auto _ : state) {
    std::uint64_t sum = 0;
    f.bus.emit(sum);
    benchmark::DoNotOptimize(sum);
  }
  weakref_bench::set_ops(state, size_of(state));
}

template <impl I>
void connect(benchmark::State& state) {
  auto& f = weakref_bench::cached<fixture<I>>(size_of(state));
  std::vector<typename bus<I>::handle> handles(batch);
  auto undo = [&] {
    for (auto& h : handles) f.bus.disconnect(h);
  };
  auto add = [&] {
    for (std::size_t j = 0; j < batch; ++j) handles[j] = f.bus.connect(f.extra[j]);
  };
  weakref_bench::run_batches(state, batch, undo, add);
  undo();
}

template <impl I>
void disconnect(benchmark::State& state) {
  auto& f = weakref_bench::cached<fixture<I>>(size_of(state));
  std::vector<typename bus<I>::handle> handles(batch);
  auto add = [&] {
    for (std::size_t j = 0; j < batch; ++j) handles[j] = f.bus.connect(f.extra[j]);
  };
  auto remove = [&] {
    for (auto& h : handles) f.bus.disconnect(h);
  };
  weakref_bench::run_batches(state, batch, add, remove);
}

template <impl I>
void emit_dying(benchmark::State& state) {
  auto& f = weakref_bench::cached<fixture<I>>(size_of(state));
  std::uint64_t next_id = 1u << 30;
  std::vector<std::shared_ptr<item>> doomed(batch);
  auto add = [&] {
    for (auto& obj : doomed) {
      obj = make_item<I>(next_id++);
      f.bus.connect(obj);
    }
  };
  auto kill_and_emit = [&] {
    for (auto& obj : doomed) obj.reset();
    std::uint64_t sum = 0;
    f.bus.emit_pruning(sum);
    benchmark::DoNotOptimize(sum);
  };
  weakref_bench::run_batches(state, size_of(state), add, kill_and_emit);
}

// "<op>.vs_loop" and "<op>.vs_signals2": ours beside each baseline.
template <class Body>
void register_both(const std::string& op, Body body, bool manual_time) {
  auto configure = [manual_time](auto* b) {
    if (manual_time) b->UseManualTime();
  };
  register_pair(op + ".vs_loop",
                [body](benchmark::State& s, auto side) {
                  if constexpr (decltype(side)::value) {
                    body(s, std::integral_constant<impl, impl::ours>{});
                  } else {
                    body(s, std::integral_constant<impl, impl::loop>{});
                  }
                })
      .sizes()
      .apply(configure);
  register_pair(op + ".vs_signals2",
                [body](benchmark::State& s, auto side) {
                  if constexpr (decltype(side)::value) {
                    body(s, std::integral_constant<impl, impl::ours>{});
                  } else {
                    body(s, std::integral_constant<impl, impl::signals2>{});
                  }
                })
      .sizes()
      .apply(configure);
}

void register_benchmarks() {
  register_both(
      "signal.emit", [](auto& s, auto i) { emit<decltype(i)::value>(s); }, false);
  register_both(
      "signal.connect", [](auto& s, auto i) { connect<decltype(i)::value>(s); }, true);
  register_both(
      "signal.disconnect", [](auto& s, auto i) { disconnect<decltype(i)::value>(s); }, true);
  register_both(
      "signal.emit_dying", [](auto& s, auto i) { emit_dying<decltype(i)::value>(s); }, true);
}

}  // namespace

int main(int argc, char** argv) {
  return weakref_bench::bench_main(argc, argv, register_benchmarks, weakref_bench::no_context);
}
