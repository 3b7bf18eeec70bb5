// Tests for weakref/cache.hpp when memory is exhausted (operator new is replaced to fail on
// demand): the cache keeps its promise never to destroy a key while it holds a lock, also when
// entering the LRU front fails half-way (the entry made for the key is destroyed after the
// locks are released).
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#include "support/failing_new.hpp"
#include "weakref/cache.hpp"

namespace {

struct probed_key;
struct probed_hash {
  std::size_t operator()(const probed_key& k) const noexcept;
};
struct probed_equal {
  bool operator()(const probed_key& a, const probed_key& b) const noexcept;
};
using probed_cache = weakref::cache<probed_key, int, probed_hash, probed_equal>;

// While `probed` is set, a key destroyed on this thread checks that the cache's locks are free:
// another thread must be able to read the recent keys. Under a lock it would wait forever, so
// the check gives up after a few seconds and ends the test program.
const probed_cache* probed = nullptr;

struct probed_key {
  int id;
  explicit probed_key(int i) : id(i) {}
  probed_key(const probed_key& other) : id(other.id) {}
  probed_key& operator=(const probed_key&) = default;
  ~probed_key() {
    const auto* cache = std::exchange(probed, nullptr);  // no probe inside the probe
    if (!cache) return;
    const long budget = std::exchange(allocations_before_failure, -1);
    auto reader = std::async(std::launch::async, [cache] { (void)cache->recent_keys(); });
    if (reader.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      std::fprintf(stderr, "key %d destroyed while the cache held a lock\n", id);
      std::_Exit(1);
    }
    allocations_before_failure = budget;
    probed = cache;
  }
};
std::size_t probed_hash::operator()(const probed_key& k) const noexcept {
  return static_cast<std::size_t>(k.id);
}
bool probed_equal::operator()(const probed_key& a, const probed_key& b) const noexcept {
  return a.id == b.id;
}

// Each allocation of a get_or_create that creates, in turn, fails; a key copy the failure
// leaves behind (the LRU front's, when its index could not grow) is destroyed with no lock held.
TEST(cache_out_of_memory, a_failed_creation_destroys_keys_outside_the_locks) {
  int failures = 0;
  int successes = 0;
  for (int present = 0; present < 12; ++present) {
    for (long budget = 0; budget < 40; ++budget) {
      probed_cache cache(64);
      std::vector<std::shared_ptr<int>> values;
      values.reserve(static_cast<std::size_t>(present) + 1);  // the budget is the cache's
      for (int i = 0; i < present; ++i) {
        values.push_back(
            cache.get_or_create(probed_key(i), [] { return weakref::make_shared<int>(1); }));
      }
      const probed_key key(1000);
      probed = &cache;
      allocations_before_failure = budget;
      try {
        values.push_back(cache.get_or_create(key, [] { return weakref::make_shared<int>(5); }));
        ++successes;
      } catch (const std::bad_alloc&) {
        ++failures;
      }
      allocations_before_failure = -1;
      probed = nullptr;
      EXPECT_LE(cache.size(), static_cast<std::size_t>(present) + 1);
    }
  }
  EXPECT_GT(failures, 0);
  EXPECT_GT(successes, 0);
}

}  // namespace
