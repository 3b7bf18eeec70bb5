// weakref::cache under threads (run under ThreadSanitizer too): concurrent callers of one key
// share one creation; a failing creation lets the waiters retry; other keys never wait for a
// slow factory; stress with many threads on few keys and on many keys, with the LRU front on,
// values dying on every thread and destructors calling into the cache.
// Each test stays well under 2 s under TSan on 2 cores.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <latch>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "weakref/cache.hpp"
#include "weakref/make_shared.hpp"

namespace {

using namespace std::chrono_literals;

// A value that knows its key and says whether it is alive; a returned value must be alive.
struct item {
  explicit item(int k, std::atomic<int>* deaths = nullptr) : key(k), deaths_(deaths) {}
  item(const item&) = delete;
  item& operator=(const item&) = delete;
  ~item() {
    alive.store(false, std::memory_order_relaxed);
    if (deaths_) deaths_->fetch_add(1, std::memory_order_relaxed);
  }
  const int key;
  std::atomic<bool> alive{true};

 private:
  std::atomic<int>* deaths_;
};

using item_cache = weakref::cache<int, item>;

// Every key hashes alike: one shard, so "other keys never wait" is tested where it is hardest.
struct same_hash {
  std::size_t operator()(int) const noexcept { return 1; }
};

TEST(cache_threads, concurrent_callers_of_one_key_share_one_creation) {
  constexpr int threads = 8;
  for (int round = 0; round < 5; ++round) {
    item_cache c;
    std::atomic<int> calls{0};
    std::latch start(threads);
    std::vector<std::shared_ptr<item>> got(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        start.arrive_and_wait();
        got[static_cast<std::size_t>(t)] = c.get_or_create(7, [&] {
          calls.fetch_add(1);
          std::this_thread::sleep_for(20ms);  // so the others arrive while it runs
          return weakref::make_shared<item>(7);
        });
      });
    }
    for (auto& th : pool) th.join();
    EXPECT_EQ(calls.load(), 1) << "round " << round;
    for (auto& g : got) EXPECT_EQ(g, got[0]);
    EXPECT_EQ(c.size(), 1u);
  }
}

TEST(cache_threads, waiters_retry_when_the_creation_throws_and_one_of_them_creates) {
  weakref::cache<int, item, same_hash> c;
  std::atomic<int> calls{0};
  std::atomic<bool> first_running{false};
  std::promise<void> release_first;
  auto first = std::async(std::launch::async, [&] {
    return c.get_or_create(1, [&]() -> std::shared_ptr<item> {
      first_running = true;
      release_first.get_future().wait();
      throw std::runtime_error("first failed");
    });
  });
  while (!first_running) std::this_thread::yield();
  constexpr int waiters = 4;
  std::vector<std::future<std::shared_ptr<item>>> others;
  for (int i = 0; i < waiters; ++i) {
    others.push_back(std::async(std::launch::async, [&] {
      return c.get_or_create(1, [&] {
        calls.fetch_add(1);
        std::this_thread::sleep_for(10ms);
        return weakref::make_shared<item>(1);
      });
    }));
  }
  std::this_thread::sleep_for(50ms);  // let them wait on the first creation
  EXPECT_EQ(calls.load(), 0);         // nobody created while the first one ran
  release_first.set_value();
  EXPECT_THROW(first.get(), std::runtime_error);
  std::vector<std::shared_ptr<item>> got;
  for (auto& f : others) got.push_back(f.get());
  EXPECT_EQ(calls.load(), 1);  // one waiter created, the others shared its value
  for (auto& g : got) EXPECT_EQ(g, got[0]);
}

TEST(cache_threads, waiters_retry_when_the_creation_returns_null) {
  item_cache c;
  std::atomic<bool> first_running{false};
  std::promise<void> release_first;
  auto first = std::async(std::launch::async, [&] {
    return c.get_or_create(1, [&] {
      first_running = true;
      release_first.get_future().wait();
      return std::shared_ptr<item>();
    });
  });
  while (!first_running) std::this_thread::yield();
  auto second = std::async(std::launch::async, [&] {
    return c.get_or_create(1, [] { return weakref::make_shared<item>(1); });
  });
  std::this_thread::sleep_for(30ms);
  release_first.set_value();
  EXPECT_EQ(first.get(), nullptr);
  auto value = second.get();
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(value->key, 1);
}

TEST(cache_threads, other_keys_never_wait_for_a_slow_factory_in_their_shard) {
  weakref::cache<int, item, same_hash> c;
  std::promise<void> release_slow;
  std::atomic<bool> slow_running{false};
  auto slow = std::async(std::launch::async, [&] {
    return c.get_or_create(1, [&] {
      slow_running = true;
      release_slow.get_future().wait();
      return weakref::make_shared<item>(1);
    });
  });
  while (!slow_running) std::this_thread::yield();
  auto fast = std::async(std::launch::async, [&] {
    auto v = c.get_or_create(2, [] { return weakref::make_shared<item>(2); });
    return std::make_pair(v, c.get(1));  // get() does not wait either
  });
  auto ready = fast.wait_for(5s);
  EXPECT_EQ(ready, std::future_status::ready);
  release_slow.set_value();
  auto [two, one_meanwhile] = fast.get();
  EXPECT_EQ(two->key, 2);
  EXPECT_EQ(one_meanwhile, nullptr);
  EXPECT_EQ(slow.get()->key, 1);
}

// Many threads mixing every operation on `keys` keys; values die on every thread.
void stress(int threads, int keys, int ops, std::size_t keep_recent) {
  item_cache c(keep_recent);
  std::atomic<int> created{0}, deaths{0}, bad{0};
  std::latch start(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1u);
      std::vector<std::shared_ptr<item>> held(4);
      start.arrive_and_wait();
      for (int i = 0; i < ops; ++i) {
        int key = static_cast<int>(rng() % static_cast<unsigned>(keys));
        auto slot = rng() % held.size();
        switch (rng() % 16) {
          case 0:
            c.erase(key);
            break;
          case 1:
            if (c.size() > static_cast<std::size_t>(keys)) ++bad;
            break;
          case 2:
            if (auto v = c.get(key); v && (v->key != key || !v->alive)) ++bad;
            break;
          case 3:
            (void)c.contains(key);
            break;
          case 4:
            if (i % 512 == 0) c.resize_recent(keep_recent == 0 ? 0 : rng() % (keep_recent + 1));
            break;
          default: {
            auto v = c.get_or_create(key, [&] {
              ++created;
              return weakref::make_shared<item>(key, &deaths);
            });
            if (!v || v->key != key || !v->alive) ++bad;
            held[slot] = std::move(v);  // may release another value: deaths on every thread
          }
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(bad.load(), 0);
  c.resize_recent(0);
  EXPECT_EQ(c.size(), 0u);  // every value is released by now
  EXPECT_EQ(created.load(), deaths.load());
  EXPECT_GT(created.load(), 0);
}

TEST(cache_threads, stress_many_threads_few_keys) { stress(8, 4, 3000, 0); }
TEST(cache_threads, stress_many_threads_few_keys_with_recent_front) { stress(8, 4, 3000, 2); }
TEST(cache_threads, stress_many_threads_many_keys) { stress(6, 2000, 3000, 0); }
TEST(cache_threads, stress_many_threads_many_keys_with_recent_front) { stress(6, 2000, 3000, 64); }

// While every caller holds what it got, each key is created exactly once, whichever thread
// asked first, and every caller of a key got the same object.
TEST(cache_threads, each_key_is_created_once_while_held_many_threads_many_keys) {
  constexpr int threads = 6, keys = 3000;
  item_cache c(16);
  std::vector<std::atomic<int>> calls(keys);
  std::vector<std::vector<std::shared_ptr<item>>> got(threads);
  std::latch start(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto& mine = got[static_cast<std::size_t>(t)];
      mine.resize(keys);
      start.arrive_and_wait();
      for (int i = 0; i < keys; ++i) {
        int key = (t % 2 == 0) ? i : keys - 1 - i;  // half the threads go backwards
        mine[static_cast<std::size_t>(key)] = c.get_or_create(key, [&] {
          calls[static_cast<std::size_t>(key)].fetch_add(1);
          return weakref::make_shared<item>(key);
        });
      }
    });
  }
  for (auto& th : pool) th.join();
  int wrong = 0;
  for (std::size_t k = 0; k < keys; ++k) {
    if (calls[k].load() != 1) ++wrong;
    for (auto& mine : got) {
      if (mine[k] != got[0][k]) ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(c.size(), static_cast<std::size_t>(keys));
}

// Values whose destructors use the cache, released on several threads at once.
struct reentrant {
  reentrant(weakref::cache<int, reentrant>& cache, int key) : cache_(&cache), key_(key) {}
  ~reentrant() {
    (void)cache_->get(key_ + 1);
    (void)cache_->size();
    cache_->erase(key_ + 2);
  }

 private:
  weakref::cache<int, reentrant>* cache_;
  int key_;
};

TEST(cache_threads, destructors_calling_into_the_cache_on_several_threads) {
  weakref::cache<int, reentrant> c(8);
  constexpr int threads = 4;
  std::latch start(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) + 11u);
      start.arrive_and_wait();
      for (int i = 0; i < 2000; ++i) {
        int key = static_cast<int>(rng() % 64);
        auto v = c.get_or_create(key, [&] { return weakref::make_shared<reentrant>(c, key); });
        if (i % 7 == 0) c.erase(key);
      }
    });
  }
  for (auto& th : pool) th.join();
  c.clear();
  EXPECT_EQ(c.size(), 0u);
}

}  // namespace
