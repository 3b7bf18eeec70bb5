// Thread stress for weak_value_map, weak_key_map and weak_set (run under ThreadSanitizer): one
// thread owns a container and keeps iterating, looking up, inserting and erasing while another
// thread drops the last owners of thousands of its objects in random order. Afterwards the
// container holds exactly the objects still alive, and nothing it yielded was ever dead.
// Each test stays well under 2 s under TSan on 2 cores.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <latch>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_set.hpp"
#include "weakref/weak_value_map.hpp"

namespace {

// An object that says whether it is alive; a held object must always say yes.
struct obj {
  explicit obj(int i, std::atomic<int>* deaths = nullptr) : id(i), deaths_(deaths) {}
  obj(const obj&) = delete;
  obj& operator=(const obj&) = delete;
  ~obj() {
    alive.store(false, std::memory_order_relaxed);
    if (deaths_) deaths_->fetch_add(1, std::memory_order_relaxed);
  }
  const int id;
  std::atomic<bool> alive{true};

 private:
  std::atomic<int>* deaths_;
};

using object = std::shared_ptr<obj>;

// Drops each of `doomed` (their last owners) in a random order on its own thread, starting
// together with the caller at `start`; yields now and then so the two threads interleave.
class killer {
 public:
  killer(std::vector<object> doomed, std::latch& start, unsigned seed)
      : thread_([this, doomed = std::move(doomed), &start, seed]() mutable {
          std::shuffle(doomed.begin(), doomed.end(), std::mt19937(seed));
          start.arrive_and_wait();
          for (std::size_t i = 0; i < doomed.size(); ++i) {
            doomed[i].reset();
            if (i % 32 == 0) std::this_thread::yield();
          }
          done_.store(true, std::memory_order_release);
        }) {}
  killer(const killer&) = delete;
  killer& operator=(const killer&) = delete;
  ~killer() {
    if (thread_.joinable()) thread_.join();
  }
  bool done() const { return done_.load(std::memory_order_acquire); }
  void join() { thread_.join(); }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// What the owning thread saw go wrong.
struct problems {
  int dead_yielded = 0;   // an element whose object was dead
  int wrong_element = 0;  // an element that does not match its key, or a repeated key
  int wrong_find = 0;     // find(k) at another key
  int missing_alive = 0;  // a live, never-erased object not found
};

void expect_none(const problems& p) {
  EXPECT_EQ(p.dead_yielded, 0);
  EXPECT_EQ(p.wrong_element, 0);
  EXPECT_EQ(p.wrong_find, 0);
  EXPECT_EQ(p.missing_alive, 0);
}

constexpr int n = 2000;
constexpr int min_rounds = 3;

TEST(weak_value_map_threads, map_in_use_while_its_values_die_on_another_thread) {
  weakref::weak_value_map<int, obj> m;
  std::vector<object> kept, doomed;
  for (int i = 0; i < n; ++i) {
    auto o = weakref::make_shared<obj>(i);
    m.insert_or_assign(i, o);
    (i % 4 == 0 ? kept : doomed).push_back(std::move(o));
  }
  std::latch start(2);
  killer k(std::move(doomed), start, 1);
  start.arrive_and_wait();
  std::mt19937 rng(2);
  problems p;
  std::set<int> expected;  // keys that must be present at the end
  for (const auto& o : kept) expected.insert(o->id);
  std::vector<object> extra;
  int next_key = n;
  for (int round = 0; !k.done() || round < min_rounds; ++round) {
    std::set<int> seen;
    for (const auto& [key, value] : m) {
      p.dead_yielded += !value->alive.load(std::memory_order_relaxed);
      p.wrong_element += value->id != key || !seen.insert(key).second;
    }
    for (int j = 0; j < 64; ++j) {
      int key = static_cast<int>(rng() % n);
      if (auto value = m.get(key)) {
        p.dead_yielded += !value->alive.load(std::memory_order_relaxed);
        p.wrong_element += value->id != key;
      }
      auto it = m.find(key);
      p.wrong_find += it != m.end() && it->first != key;
      p.missing_alive += key % 4 == 0 && expected.count(key) == 1 && !m.contains(key);
    }
    extra.push_back(weakref::make_shared<obj>(next_key));
    m.insert_or_assign(next_key, extra.back());
    expected.insert(next_key++);
    auto temporary = weakref::make_shared<obj>(next_key);
    m.insert_or_assign(next_key++, temporary);  // dies below, on this thread
    temporary.reset();
    int victim = static_cast<int>(rng() % n);
    if (m.erase(victim) == 1) expected.erase(victim);
  }
  k.join();
  expect_none(p);
  EXPECT_EQ(m.size(), expected.size());
  auto keys = m.keys();
  EXPECT_EQ(std::set<int>(keys.begin(), keys.end()), expected);
}

// setdefault must return the live old value or the default, never null, however the old value
// dies (CPython test_threaded_weak_valued_setdefault); pop(k, fallback) likewise.
TEST(weak_value_map_threads, setdefault_and_pop_never_return_null_while_values_die) {
  weakref::weak_value_map<int, obj> m;
  std::vector<object> doomed;
  for (int i = 0; i < n; ++i) {
    doomed.push_back(weakref::make_shared<obj>(i));
    m.insert_or_assign(i, doomed.back());
  }
  auto fallback = weakref::make_shared<obj>(-1);
  std::latch start(2);
  killer k(std::move(doomed), start, 3);
  start.arrive_and_wait();
  int nulls = 0, wrong = 0;
  for (int round = 0; !k.done() || round < min_rounds; ++round) {
    for (int key = 0; key < n; ++key) {
      auto value = round % 2 == 0 ? m.setdefault(key, fallback) : m.pop(key, fallback);
      nulls += value == nullptr;
      wrong += value && value != fallback && value->id != key;
    }
  }
  k.join();
  EXPECT_EQ(nulls, 0);
  EXPECT_EQ(wrong, 0);
  for (int key = 0; key < n; ++key) EXPECT_EQ(m.setdefault(key, fallback), fallback);
  EXPECT_EQ(m.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(weakref::getweakrefcount(fallback), static_cast<std::size_t>(n));
}

// Spins on `phase` until `ok(value)`; yields only after a long spin, so the other thread reacts
// within nanoseconds and its deaths land inside the calls this thread makes meanwhile.
template <class Ok>
int await(const std::atomic<int>& phase, Ok ok) {
  for (int spins = 0;; ++spins) {
    int value = phase.load(std::memory_order_acquire);
    if (ok(value)) return value;
    if (spins > (1 << 16)) std::this_thread::yield();
  }
}

// Lock-step: each round this thread hands the only owner of key 0's value to the other thread,
// which drops it, while this thread keeps calling setdefault / find / try_emplace on key 0 (key
// 1 sits after it) until the drop is done. Wherever the death lands, the answer must be about
// key 0: setdefault never null (CPython test_threaded_weak_valued_setdefault), find and
// try_emplace never at key 1.
TEST(weak_value_map_threads, calls_racing_the_death_of_their_keys_value_answer_that_key) {
  weakref::weak_value_map<int, obj> m;
  auto fallback = weakref::make_shared<obj>(-1), other = weakref::make_shared<obj>(1);
  object slot;  // handed over through `phase` (release/acquire)
  std::atomic<int> phase{0};
  constexpr int stop = -1;
  std::thread dropper([&] {
    for (int i = 0;; ++i) {
      if (await(phase, [&](int v) { return v == 2 * i + 1 || v == stop; }) == stop) return;
      slot.reset();
      phase.store(2 * i + 2, std::memory_order_release);
    }
  });
  int nulls = 0, wrong_key = 0, rounds = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(800);
  for (; rounds < 20000 && std::chrono::steady_clock::now() < deadline; ++rounds) {
    m.erase(1);
    auto value = weakref::make_shared<obj>(0);
    m.insert_or_assign(0, value);
    m.insert_or_assign(1, other);
    slot = std::move(value);
    phase.store(2 * rounds + 1, std::memory_order_release);
    bool dropped = false;
    do {
      dropped = phase.load(std::memory_order_acquire) == 2 * rounds + 2;
      if (rounds % 3 == 0) {
        nulls += m.setdefault(0, fallback) == nullptr;
      } else if (rounds % 3 == 1) {
        auto it = m.find(0);
        wrong_key += it != m.end() && it->first != 0;
      } else {
        auto [it, added] = m.try_emplace(0, fallback);
        wrong_key += it == m.end() || it->first != 0;
      }
    } while (!dropped);
  }
  phase.store(stop, std::memory_order_release);
  dropper.join();
  EXPECT_GE(rounds, 10);
  EXPECT_EQ(nulls, 0) << "setdefault returned null " << nulls << " times in " << rounds
                      << " rounds";
  EXPECT_EQ(wrong_key, 0) << "find/try_emplace answered key 1 " << wrong_key << " times in "
                          << rounds << " rounds";
}

TEST(weak_key_map_threads, map_in_use_while_its_keys_die_on_another_thread) {
  weakref::weak_key_map<obj, int> m;
  std::vector<object> kept, doomed;
  std::vector<std::weak_ptr<obj>> watch;
  for (int i = 0; i < n; ++i) {
    auto o = weakref::make_shared<obj>(i);
    m[o] = i;
    watch.push_back(o);
    (i % 4 == 0 ? kept : doomed).push_back(std::move(o));
  }
  std::latch start(2);
  killer k(std::move(doomed), start, 4);
  start.arrive_and_wait();
  std::mt19937 rng(5);
  problems p;
  std::set<int> erased;
  std::vector<object> extra;
  for (int round = 0; !k.done() || round < min_rounds; ++round) {
    std::set<int> seen;
    for (auto& [key, value] : m) {
      p.dead_yielded += !key->alive.load(std::memory_order_relaxed);
      p.wrong_element += key->id != value || !seen.insert(value).second;
      value += 0;  // values are written through iteration
    }
    for (int j = 0; j < 64; ++j) {
      auto i = static_cast<std::size_t>(rng() % n);
      auto key = watch[i].lock();  // alive now, and held: it must be found unless erased
      if (!key) continue;
      bool present = erased.count(key->id) == 0;
      p.missing_alive += present && (!m.contains(key) || m.get(key) != key->id);
      auto it = m.find(key);
      p.wrong_find += it != m.end() && it->first != key;
      if (j == 0 && m.erase(key) == 1) erased.insert(key->id);
    }
    extra.push_back(weakref::make_shared<obj>(n + round));
    m[extra.back()] = n + round;
    m[weakref::make_shared<obj>(-1)] = -1;  // dies at once, on this thread
  }
  k.join();
  expect_none(p);
  std::set<int> expected;
  for (const auto& o : kept) {
    if (erased.count(o->id) == 0) expected.insert(o->id);
  }
  for (const auto& o : extra) expected.insert(o->id);
  EXPECT_EQ(m.size(), expected.size());
  auto values = m.values();
  EXPECT_EQ(std::set<int>(values.begin(), values.end()), expected);
}

TEST(weak_set_threads, set_in_use_while_its_members_die_on_another_thread) {
  weakref::weak_set<obj> s;
  std::vector<object> kept, doomed;
  std::vector<std::weak_ptr<obj>> watch;
  for (int i = 0; i < n; ++i) {
    auto o = weakref::make_shared<obj>(i);
    s.insert(o);
    watch.push_back(o);
    (i % 4 == 0 ? kept : doomed).push_back(std::move(o));
  }
  std::latch start(2);
  killer k(std::move(doomed), start, 6);
  start.arrive_and_wait();
  std::mt19937 rng(7);
  problems p;
  std::set<int> erased;
  std::vector<object> extra;
  for (int round = 0; !k.done() || round < min_rounds; ++round) {
    std::set<int> seen;
    for (const auto& member : s) {
      p.dead_yielded += !member->alive.load(std::memory_order_relaxed);
      p.wrong_element += !seen.insert(member->id).second;
    }
    for (int j = 0; j < 64; ++j) {
      auto key = watch[static_cast<std::size_t>(rng() % n)].lock();
      if (!key) continue;
      p.missing_alive += erased.count(key->id) == 0 && !s.contains(key);
      auto it = s.find(key);
      p.wrong_find += it != s.end() && *it != key;
      if (j == 0 && s.erase(key) == 1) erased.insert(key->id);
    }
    extra.push_back(weakref::make_shared<obj>(n + round));
    s.insert(extra.back());
    s.insert(weakref::make_shared<obj>(-1));  // dies at once, on this thread
  }
  k.join();
  expect_none(p);
  std::set<int> expected, members;
  for (const auto& o : kept) {
    if (erased.count(o->id) == 0) expected.insert(o->id);
  }
  for (const auto& o : extra) expected.insert(o->id);
  for (const auto& member : s) members.insert(member->id);
  EXPECT_EQ(s.size(), expected.size());
  EXPECT_EQ(members, expected);
}

// One object in a weak_set, a weak_key_map and (under two keys) a weak_value_map: its death on
// another thread posts to four entries in three containers at once.
TEST(weak_containers_threads, objects_in_several_containers_die_on_another_thread) {
  constexpr int count = 1500;
  weakref::weak_set<obj> s;
  weakref::weak_key_map<obj, int> km;
  weakref::weak_value_map<int, obj> vm;
  std::vector<object> kept, doomed;
  for (int i = 0; i < count; ++i) {
    auto o = weakref::make_shared<obj>(i);
    s.insert(o);
    km[o] = i;
    vm.insert_or_assign(i, o);
    vm.insert_or_assign(i + count, o);
    (i % 3 == 0 ? kept : doomed).push_back(std::move(o));
  }
  std::latch start(2);
  killer k(std::move(doomed), start, 8);
  start.arrive_and_wait();
  int dead_yielded = 0;
  for (int round = 0; !k.done() || round < min_rounds; ++round) {
    for (const auto& member : s) dead_yielded += !member->alive.load(std::memory_order_relaxed);
    for (const auto& [key, value] : km) dead_yielded += !key->alive.load(std::memory_order_relaxed);
    for (const auto& [key, value] : vm) {
      dead_yielded += !value->alive.load(std::memory_order_relaxed);
    }
  }
  k.join();
  EXPECT_EQ(dead_yielded, 0);
  EXPECT_EQ(s.size(), kept.size());
  EXPECT_EQ(km.size(), kept.size());
  EXPECT_EQ(vm.size(), 2 * kept.size());
  for (const auto& o : kept) {
    ASSERT_EQ(weakref::getweakrefcount(o), 4u);
    EXPECT_EQ(vm.get(o->id + count), o);
  }
}

// The containers go (on their thread) while their objects die on another; the deaths that
// arrive after the containers are gone must find nothing to touch.
TEST(weak_containers_threads, containers_destroyed_while_their_objects_die_on_another_thread) {
  constexpr int count = 600;
  for (unsigned round = 0; round < 8; ++round) {
    std::atomic<int> deaths{0};
    auto s = std::make_unique<weakref::weak_set<obj>>();
    auto km = std::make_unique<weakref::weak_key_map<obj, int>>();
    auto vm = std::make_unique<weakref::weak_value_map<int, obj>>();
    std::vector<object> kept, doomed;
    for (int i = 0; i < count; ++i) {
      auto o = weakref::make_shared<obj>(i, &deaths);
      s->insert(o);
      (*km)[o] = i;
      vm->insert_or_assign(i, o);
      (i % 5 == 0 ? kept : doomed).push_back(std::move(o));
    }
    const auto doomed_count = static_cast<int>(doomed.size());
    std::latch start(2);
    killer k(std::move(doomed), start, 10 + round);
    start.arrive_and_wait();
    // Let part of the deaths reach the containers (more each round), then destroy them.
    for (int spins = 0;
         spins < 100000 && deaths.load() < doomed_count * static_cast<int>(round) / 8; ++spins) {
      std::this_thread::yield();
    }
    s.reset();
    km.reset();
    vm.reset();
    k.join();
    EXPECT_EQ(deaths.load(), doomed_count);
    for (const auto& o : kept) ASSERT_EQ(weakref::getweakrefcount(o), 0u);
    kept.clear();
    EXPECT_EQ(deaths.load(), count);
  }
}

// valuerefs() handles share the map's entry nodes. Other threads copy, lock and drop such
// handles while the map erases the entries: when the map's handle is the last one, erase
// frees the node at once, so it must see (acquire) everything the other threads did with the
// node before they dropped theirs (ThreadSanitizer reported the free racing with a reader).
TEST(weak_containers_threads, erasing_entries_while_other_threads_drop_their_shared_handles) {
  constexpr int count = 200;
  constexpr int workers = 2;
  for (unsigned round = 0; round < 6; ++round) {
    weakref::weak_value_map<int, obj> m;
    std::vector<object> owners;
    for (int i = 0; i < count; ++i) {
      owners.push_back(weakref::make_shared<obj>(i));
      m.insert_or_assign(i, owners.back());
    }
    std::vector<std::vector<weakref::ref<obj>>> handles;
    for (int w = 0; w < workers; ++w) handles.push_back(m.valuerefs());
    std::latch start(workers + 1);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        auto mine = std::move(handles[static_cast<std::size_t>(w)]);
        std::shuffle(mine.begin(), mine.end(), std::mt19937(round * workers + w));
        start.arrive_and_wait();
        for (auto& r : mine) {
          auto copy = r;
          if (auto p = copy.lock()) wrong += !p->alive.load(std::memory_order_relaxed);
          r = weakref::ref<obj>();  // the copy goes last: two releases, one of them the last
        }
      });
    }
    std::vector<int> keys(count);
    for (int i = 0; i < count; ++i) keys[static_cast<std::size_t>(i)] = i;
    std::shuffle(keys.begin(), keys.end(), std::mt19937(100 + round));
    start.arrive_and_wait();
    for (int key : keys) EXPECT_EQ(m.erase(key), 1u);
    for (auto& t : threads) t.join();
    EXPECT_EQ(wrong.load(), 0);
    for (const auto& o : owners) ASSERT_EQ(weakref::getweakrefcount(o), 0u);
  }
}

}  // namespace
