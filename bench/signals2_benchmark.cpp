// The event-bus case against Boost.Signals2 slot tracking, registered as a pair (see
// bench_support.hpp), at 10, 1,000 and 1,000,000 observers:
//   event_bus.emit     weak_set<item>: iterate the live observers, call notify()
//                      vs boost::signals2::signal: one slot per observer, each tracking the
//                      observer with track_foreign(std::weak_ptr), emitted once
//   event_bus.connect  weak_set::insert of 64 more observers (then erase, untimed)
//                      vs signal.connect of their tracking slots (then disconnect, untimed)
// Built only when CMake finds Boost (tools/perf_report.sh installs libboost-dev).
#include <benchmark/benchmark.h>

#include <boost/signals2.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "bench_support.hpp"
#include "items.hpp"
#include "weakref/weak_set.hpp"

namespace {

using weakref_bench::item;
using weakref_bench::make;
using weakref_bench::register_pair;
using weakref_bench::size_of;
using signal_type = boost::signals2::signal<void(std::uint64_t&)>;

// A signal slot that calls obj->notify and disconnects itself once obj is gone.
signal_type::slot_type tracking_slot(const std::shared_ptr<item>& obj) {
  const item* raw = obj.get();
  return signal_type::slot_type([raw](std::uint64_t& sum) { raw->notify(sum); })
      .track_foreign(std::weak_ptr<item>(obj));
}

template <class Side>
struct bus_fixture {
  explicit bus_fixture(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      observers.push_back(make<item>(Side{}, i));
      if constexpr (Side::value) {
        bus.insert(observers.back());
      } else {
        bus.connect(tracking_slot(observers.back()));
      }
    }
    for (std::size_t j = 0; j < 64; ++j) extra.push_back(make<item>(Side{}, n + j));
  }
  std::vector<std::shared_ptr<item>> observers;
  std::vector<std::shared_ptr<item>> extra;  // what connect adds
  std::conditional_t<Side::value, weakref::weak_set<item>, signal_type> bus;
};

template <class Side>
void emit(benchmark::State& state, Side) {
  auto& f = weakref_bench::cached<bus_fixture<Side>>(size_of(state));
  for (auto _ : state) {
    std::uint64_t sum = 0;
    if constexpr (Side::value) {
      for (const auto& obj : f.bus) obj->notify(sum);
    } else {
      f.bus(sum);
    }
    benchmark::DoNotOptimize(sum);
  }
  weakref_bench::set_ops(state, size_of(state));
}

template <class Side>
void connect(benchmark::State& state, Side) {
  auto& f = weakref_bench::cached<bus_fixture<Side>>(size_of(state));
  std::vector<boost::signals2::connection> connections(f.extra.size());
  auto undo = [&] {
    for (std::size_t j = 0; j < f.extra.size(); ++j) {
      if constexpr (Side::value) {
        f.bus.erase(f.extra[j]);
      } else {
        connections[j].disconnect();
      }
    }
  };
  auto add = [&] {
    for (std::size_t j = 0; j < f.extra.size(); ++j) {
      if constexpr (Side::value) {
        f.bus.insert(f.extra[j]);
      } else {
        connections[j] = f.bus.connect(tracking_slot(f.extra[j]));
      }
    }
  };
  weakref_bench::run_batches(state, f.extra.size(), undo, add);
  undo();
}

void register_benchmarks() {
  register_pair("event_bus.emit", [](auto& s, auto side) { emit(s, side); }).sizes();
  register_pair("event_bus.connect", [](auto& s, auto side) { connect(s, side); })
      .sizes()
      .apply([](auto* b) { b->UseManualTime(); });
}

}  // namespace

int main(int argc, char** argv) {
  return weakref_bench::bench_main(argc, argv, register_benchmarks, weakref_bench::no_context);
}
