// Tests for weakref::cache against hostile user code: keys whose destructors call into the
// cache (they must never run under one of its locks), and a KeyEqual that throws with every
// hash colliding (erase, the LRU front's updates and resize_recent must stay whole).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "weakref/cache.hpp"

namespace {

// Calls into the cache from another thread and waits (up to 2 s) for them to finish: one that
// does not finish in time needs a lock the calling thread holds (a same-thread call would
// deadlock). The threads are joined once the caller has let go of its locks.
class lock_probe {
 public:
  lock_probe() = default;
  lock_probe(const lock_probe&) = delete;
  lock_probe& operator=(const lock_probe&) = delete;
  ~lock_probe() { join(); }

  // May be called from any thread (a probe's own call may destroy another key).
  void check(std::function<void()> call) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    {
      std::lock_guard lock(mutex_);
      threads_.emplace_back([call = std::move(call), done] {
        call();
        done->store(true);
      });
    }
    for (int i = 0; i < 200 && !done->load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ++checks_;
    if (!done->load()) ++blocked_;
  }
  // Joins the probes (and those they started); returns how many were blocked.
  int join() {
    for (;;) {
      std::thread t;
      {
        std::lock_guard lock(mutex_);
        if (threads_.empty()) break;
        t = std::move(threads_.back());
        threads_.pop_back();
      }
      t.join();
    }
    return blocked_;
  }
  int checks() const { return checks_; }

 private:
  std::mutex mutex_;
  std::vector<std::thread> threads_;
  std::atomic<int> checks_{0};
  std::atomic<int> blocked_{0};
};

// A resource a key owns; its destructor calls `on_destroy` (a call into the cache).
struct resource {
  std::function<void()>* on_destroy;
  ~resource() {
    if (on_destroy && *on_destroy) (*on_destroy)();
  }
};

struct key {
  int id;
  std::shared_ptr<resource> res;
};
struct key_hash {
  std::size_t operator()(const key& k) const noexcept { return std::hash<int>()(k.id); }
};
struct key_equal {
  bool operator()(const key& a, const key& b) const noexcept { return a.id == b.id; }
};
using key_cache = weakref::cache<key, int, key_hash, key_equal>;

// A key `id` owning a resource whose destructor probes `c` from another thread.
struct probed_keys {
  explicit probed_keys(key_cache& c) {
    on_destroy = [this, &c] {
      probe.check([&c] {
        (void)c.size();
        (void)c.recent_keys();
      });
    };
  }
  key make(int id) { return key{id, std::make_shared<resource>(resource{&on_destroy})}; }
  // The number of resources destroyed under a lock (after checking some were destroyed).
  int blocked() {
    int n = probe.join();
    EXPECT_GT(probe.checks(), 0) << "no key was destroyed";
    return n;
  }
  lock_probe probe;
  std::function<void()> on_destroy;
};

TEST(cache_hostile, key_of_a_dead_entry_is_destroyed_with_no_lock_held) {
  key_cache c;
  probed_keys keys(c);
  (void)c.get_or_create(keys.make(1), [] { return 1; });  // dies: the entry's key is the last
  (void)c.get_or_create(keys.make(2), [] { return 2; });  // owner of its resource
  (void)c.get_or_create(keys.make(3), [] { return 3; });
  EXPECT_EQ(c.size(), 0u);  // collects (shard lock)
  EXPECT_FALSE(c.contains(key{1, nullptr}));
  EXPECT_EQ(keys.blocked(), 0) << "a key's destructor ran under the shard lock";
  keys.on_destroy = nullptr;
}

TEST(cache_hostile, key_taken_by_a_lookup_or_a_creation_is_destroyed_with_no_lock_held) {
  key_cache c;
  probed_keys keys(c);
  (void)c.get_or_create(keys.make(1), [] { return 1; });
  EXPECT_EQ(c.get(key{1, nullptr}), nullptr);  // find() collects
  (void)c.get_or_create(keys.make(1), [] { return 10; });
  EXPECT_EQ(*c.get_or_create(key{1, nullptr}, [] { return 11; }), 11);  // create() collects
  EXPECT_EQ(keys.blocked(), 0) << "a key's destructor ran under the shard lock";
  keys.on_destroy = nullptr;
}

TEST(cache_hostile, key_taken_by_erase_or_clear_is_destroyed_with_no_lock_held) {
  key_cache c;
  probed_keys keys(c);
  auto one = c.get_or_create(keys.make(1), [] { return 1; });  // held: the entry lives
  auto two = c.get_or_create(keys.make(2), [] { return 2; });
  EXPECT_TRUE(c.erase(key{1, nullptr}));
  c.clear();
  EXPECT_EQ(keys.blocked(), 0) << "a key's destructor ran under the shard lock";
  keys.on_destroy = nullptr;
}

TEST(cache_hostile, front_key_taken_by_erase_or_clear_is_destroyed_with_no_lock_held) {
  key_cache c(4);
  probed_keys keys(c);
  (void)c.get_or_create(keys.make(1), [] { return 1; });  // the front holds it
  (void)c.get_or_create(keys.make(2), [] { return 2; });
  EXPECT_TRUE(c.erase(key{1, nullptr}));  // the table's copy goes first, the front's last
  c.clear();                              // likewise
  EXPECT_EQ(keys.blocked(), 0) << "a key's destructor ran under the LRU front's mutex";
  keys.on_destroy = nullptr;
}

// KeyEqual that throws on its `throw_at`-th call from now (if positive), or on every call.
struct throwing_equal {
  static inline int calls = 0;
  static inline int throw_at = 0;
  static inline bool always = false;
  bool operator()(int a, int b) const {
    if (always || ++calls == throw_at) throw std::runtime_error("KeyEqual");
    return a == b;
  }
};
struct colliding_hash {
  std::size_t operator()(int) const noexcept { return 42; }
};
struct reset_equal {
  reset_equal() {
    throwing_equal::calls = 0, throwing_equal::throw_at = 0, throwing_equal::always = false;
  }
  ~reset_equal() { throwing_equal::throw_at = 0, throwing_equal::always = false; }
  reset_equal(const reset_equal&) = delete;
  reset_equal& operator=(const reset_equal&) = delete;
};

// erase(key) on a cache whose key 1 is held by the front only, KeyEqual throwing on each of its
// calls in turn: either erase threw and nothing changed, or it erased.
template <class Cache, class Key>
void erase_whose_key_equal_throws_changes_nothing(const Key& key) {
  for (int at = 1; at <= 3; ++at) {
    reset_equal guard;
    Cache c(4);
    int made = 0;
    auto factory = [&] { return ++made; };
    std::weak_ptr<int> first = c.get_or_create(1, factory);  // held by the front only
    throwing_equal::calls = 0;
    throwing_equal::throw_at = at;
    bool threw = false;
    try {
      EXPECT_TRUE(c.erase(key));
    } catch (const std::runtime_error&) {
      threw = true;
    }
    throwing_equal::throw_at = 0;
    if (!threw) {
      EXPECT_TRUE(first.expired());
      continue;
    }
    EXPECT_TRUE(c.contains(1)) << "the table forgot the key though erase threw (call " << at << ")";
    EXPECT_EQ(c.recent_keys(), std::vector<int>{1});
    EXPECT_EQ(c.get_or_create(1, factory), first.lock());
    EXPECT_EQ(made, 1) << "the factory ran again while the first value lived in the front";
  }
}

TEST(cache_hostile, erase_whose_key_equal_throws_changes_nothing) {
  erase_whose_key_equal_throws_changes_nothing<
      weakref::cache<int, int, std::hash<int>, throwing_equal>>(1);
}

// The same through the heterogeneous lookups: a long looks up the int keys.
struct transparent_hash {
  using is_transparent = void;
  std::size_t operator()(long k) const noexcept { return std::hash<long>()(k); }
};
struct transparent_throwing_equal : throwing_equal {
  using is_transparent = void;
};

TEST(cache_hostile, heterogeneous_erase_whose_key_equal_throws_changes_nothing) {
  erase_whose_key_equal_throws_changes_nothing<
      weakref::cache<int, int, transparent_hash, transparent_throwing_equal>>(1L);
}

TEST(cache_hostile, front_update_whose_key_equal_throws_leaves_it_unchanged_and_within_size) {
  // Throws on each KeyEqual call of a creation in turn, with every hash colliding.
  for (int at = 1; at <= 8; ++at) {
    reset_equal guard;
    weakref::cache<int, int, colliding_hash, throwing_equal> c(1);
    std::weak_ptr<int> one = c.get_or_create(1, [] { return 1; });  // held by the front only
    throwing_equal::calls = 0;
    throwing_equal::throw_at = at;
    std::weak_ptr<int> two;
    bool threw = false;
    try {
      two = c.get_or_create(2, [] { return 2; });
    } catch (const std::runtime_error&) {
      threw = true;
    }
    throwing_equal::throw_at = 0;
    const auto recent = c.recent_keys();
    EXPECT_LE(recent.size(), 1u) << "call " << at;
    if (threw) {
      EXPECT_EQ(recent, std::vector<int>{1}) << "call " << at;
      EXPECT_FALSE(one.expired()) << "call " << at;
      EXPECT_TRUE(two.expired()) << "call " << at;
    } else {
      EXPECT_EQ(recent, std::vector<int>{2}) << "call " << at;
      EXPECT_TRUE(one.expired()) << "call " << at;
      EXPECT_FALSE(two.expired()) << "call " << at;
    }
  }
}

// A value whose destructor probes the cache from another thread.
struct probed_value;
using probed_cache = weakref::cache<int, probed_value, colliding_hash, throwing_equal>;
struct probed_value {
  explicit probed_value(int v) : value(v) {}
  ~probed_value() {
    if (cache && probe) probe->check([c = cache] { (void)c->recent_keys(); });
  }
  int value;
  static inline probed_cache* cache = nullptr;
  static inline lock_probe* probe = nullptr;
};

// Fills `c` with keys 1..3, whose values' destructors then report to `probe` whether they run
// under the cache's LRU lock.
void watch_three_values(probed_cache& c, lock_probe& probe) {
  for (int k = 1; k <= 3; ++k) (void)c.get_or_create(k, [k] { return probed_value(k); });
  probed_value::cache = &c;
  probed_value::probe = &probe;
}

TEST(cache_hostile, resize_recent_never_calls_key_equal_nor_releases_under_its_lock) {
  reset_equal guard;
  lock_probe probe;
  {
    probed_cache c(3);
    watch_three_values(c, probe);
    throwing_equal::calls = 0;
    throwing_equal::always = true;
    EXPECT_NO_THROW(c.resize_recent(1));
    throwing_equal::always = false;
    EXPECT_EQ(throwing_equal::calls, 0);
    EXPECT_EQ(c.recent_keys(), std::vector<int>{3});
    EXPECT_EQ(c.size(), 1u);
    probed_value::cache = nullptr;
    EXPECT_EQ(probe.join(), 0) << "a value's destructor ran under the LRU front's mutex";
  }
  probed_value::probe = nullptr;
}

// Reviewer's t3b: throwing on the n-th KeyEqual call of a resize (for each n it may make).
TEST(cache_hostile, resize_recent_with_a_throwing_key_equal_releases_nothing_under_its_lock) {
  for (int at = 1; at <= 4; ++at) {
    reset_equal guard;
    lock_probe probe;
    {
      probed_cache c(3);
      watch_three_values(c, probe);
      throwing_equal::calls = 0;
      throwing_equal::throw_at = at;
      try {
        c.resize_recent(1);
      } catch (const std::runtime_error&) {
      }
      throwing_equal::throw_at = 0;
      probed_value::cache = nullptr;
      EXPECT_EQ(probe.join(), 0) << "a value's destructor ran under the LRU front's mutex (call "
                                 << at << ")";
    }
    probed_value::probe = nullptr;
  }
}

}  // namespace
