// bench/parked_thread.hpp — every benchmark binary starts this second thread before timing:
// libstdc++ skips atomic reference counts until a program starts a thread, which would
// flatter std::weak_ptr and hide our own atomics.
#pragma once

#include <benchmark/benchmark.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define WEAKREF_BENCH_HAS_SINGLE_THREADED 1
#endif

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
      "mode", __libc_single_threaded ? "single-threaded (NOT representative)"
                                     : "multi-threaded (second thread started: atomic refcounts)");
  benchmark::AddCustomContext("__libc_single_threaded", std::to_string(__libc_single_threaded));
#else
  benchmark::AddCustomContext("mode", "multi-threaded (second thread started: atomic refcounts)");
#endif
}
