// support/alongside.hpp — for stress tests whose point is that two things happen at once.
//
//   run_alongside(2, [&] { check_a_read(); },                      // on 2 threads, repeatedly
//                 300, [&](int round) { change_something(round); });  // here, 300+ rounds
//
// A fixed loop beside a `while (!stop)` thread can end before that thread is ever scheduled on a
// loaded machine, and then nothing raced and the test could not fail. Here the foreground starts
// only once every background thread has made its first call, and goes on past `rounds` until
// the background threads have made `min_calls` more calls between them.
#pragma once

#include <atomic>
#include <thread>
#include <vector>

namespace test_support {

// Calls `background()` over and over on `threads` new threads while calling
// `foreground(round)` for round = 0, 1, ... on this one (see above). Returns the background's
// calls in all.
template <class Background, class Foreground>
long run_alongside(int threads, Background background, int rounds, Foreground foreground,
                   long min_calls = 4) {
  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  std::atomic<long> calls{0};
  std::vector<std::thread> others;
  struct joiner {  // also when a fatal failure returns from the test early
    std::atomic<bool>& stop;
    std::vector<std::thread>& others;
    ~joiner() {
      stop.store(true);
      for (auto& t : others) t.join();
    }
  } join{stop, others};
  for (int t = 0; t < threads; ++t) {
    others.emplace_back([&] {
      background();
      calls.fetch_add(1);
      started.fetch_add(1);
      while (!stop.load()) {
        background();
        calls.fetch_add(1);
      }
    });
  }
  while (started.load() < threads) std::this_thread::yield();
  const long before = calls.load();
  for (int round = 0; round < rounds || calls.load() - before < min_calls; ++round) {
    foreground(round);
  }
  return calls.load();
}

}  // namespace test_support
