// weakref_difftest_fuzz — a libFuzzer target: arbitrary bytes run as a difftest scenario.
//
// The bytes go through the difftest runner's own interpreter (this file includes
// weakref_difftest.cpp without its main), so malformed lines take the paths the runner has for
// them (INVALID, EXC ... KeyError, ...). The trace goes to a string that is thrown away: what
// the fuzzer checks is that no input crashes, trips ASan/UBSan or leaks.
//
// The runner never destroys its state (nothing may die after END-OF-SCRIPT); here each input
// must start from nothing and leave nothing behind, so after the scenario every name table is
// emptied, which may run callbacks that bind new names, and a collection frees the cycles,
// until nothing is left. Every scenario object is tracked by the collector, so
// gc::get_objects() must then be empty: an object still alive is a leak (LeakSanitizer cannot
// see it: the collector's registry still points at it). The library's std::atexit finalizer
// run finds no finalizer alive at exit: each one's object is dead by then. (libFuzzer's own
// leak check after each input turns itself off after a while, as the library's process-wide
// registries keep reachable memory from one input to the next; LeakSanitizer still checks at
// exit.)
//
// Build and run: the `fuzz` preset (README, "Testing"); seeds: tools/difftest/corpus.
#define WEAKREF_DIFFTEST_NO_MAIN
#include "weakref_difftest.cpp"

namespace {

// Releases a table's values after it has been emptied (their deaths may bind new names).
template <class Map>
bool release_all(Map& table) {
  if (table.empty()) return false;
  Map values;
  values.swap(table);
  values.clear();
  return true;
}

// Empties every name table and collects, until a round finds nothing to release or free.
void release_everything() {
  auto& v = vars();
  for (int round = 0;; ++round) {
    bool released = release_all(v.objects);
    released |= release_all(v.iterations);
    released |= release_all(v.containers);
    released |= release_all(v.weak);
    released |= release_all(v.finalizers);
    released |= weakref::gc::collect() != 0;
    if (!released) break;
    if (round == 100000) {
      std::fputs("weakref_difftest_fuzz: the state never empties\n", stderr);
      std::abort();
    }
  }
  v.first_of.clear();
  if (auto left = weakref::gc::get_objects(); !left.empty()) {
    std::fprintf(stderr, "weakref_difftest_fuzz: %zu objects alive after releasing everything\n",
                 left.size());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  start();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string trace;
  trace_sink() = &trace;
  deaths() = {};
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  run_scenario(in);
  release_everything();
  trace_sink() = nullptr;
  return 0;
}
