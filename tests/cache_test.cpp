// Tests for weakref::cache on one thread: get-or-create, what factories may return, failing and
// re-entrant factories, the LRU front's exact order, erase/clear/resize_recent, and values
// whose destructors call into the cache. The threaded cases are in cache_threads_test.cpp.
#include "weakref/cache.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/tracked.hpp"
#include "support/type_error_message.hpp"
#include "weakref/make_shared.hpp"

namespace {

using testing::ElementsAre;

using tracked_cache = weakref::cache<std::string, tracked>;

// A factory making tracked(log, name) and counting its calls.
struct counting_factory {
  event_log* log;
  std::string name;
  int* calls;
  std::shared_ptr<tracked> operator()() const {
    ++*calls;
    return weakref::make_shared<tracked>(*log, name);
  }
};

// Every key hashes alike: all in one shard, one probe run.
struct same_hash {
  std::size_t operator()(const std::string&) const noexcept { return 42; }
};

TEST(cache, get_or_create_calls_the_factory_once_while_the_value_lives) {
  event_log log;
  tracked_cache c;
  int calls = 0;
  auto a = c.get_or_create("a", counting_factory{&log, "a", &calls});
  auto b = c.get_or_create("a", counting_factory{&log, "a2", &calls});
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a->name(), "a");
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.get("a"), a);
}

TEST(cache, value_leaves_when_its_last_holder_drops_it_and_is_created_again) {
  event_log log;
  tracked_cache c;
  int calls = 0;
  auto a = c.get_or_create("a", counting_factory{&log, "a", &calls});
  a.reset();
  EXPECT_THAT(log.events, ElementsAre("~a"));
  EXPECT_EQ(c.size(), 0u);
  EXPECT_TRUE(c.empty());
  EXPECT_FALSE(c.contains("a"));
  EXPECT_EQ(c.get("a"), nullptr);
  auto again = c.get_or_create("a", counting_factory{&log, "a-again", &calls});
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(again->name(), "a-again");
}

TEST(cache, get_never_creates_and_misses_on_absent_keys) {
  tracked_cache c;
  EXPECT_EQ(c.get("nothing"), nullptr);
  EXPECT_FALSE(c.contains("nothing"));
  EXPECT_EQ(c.size(), 0u);
}

struct texture {
  explicit texture(std::string n) : name(std::move(n)) {}
  texture(texture&&) = default;
  virtual ~texture() = default;
  std::string name;
};
struct fancy_texture : texture {
  using texture::texture;
};

TEST(cache, factory_may_return_a_value_which_is_made_weakrefable) {
  weakref::cache<int, texture> c;
  auto t = c.get_or_create(1, [] { return texture("one"); });
  EXPECT_EQ(t->name, "one");
  EXPECT_TRUE(weakref::is_weakrefable(t));
  EXPECT_EQ(c.get(1), t);
  // Anything V is constructible from works too.
  auto u = c.get_or_create(2, [] { return std::string("two"); });
  EXPECT_EQ(u->name, "two");
}

TEST(cache, factory_may_take_the_key) {
  weakref::cache<std::string, texture> c;
  auto t = c.get_or_create("grass", [](const std::string& key) { return texture(key + "!"); });
  EXPECT_EQ(t->name, "grass!");
}

TEST(cache, factory_may_return_a_derived_pointer) {
  weakref::cache<int, texture> c;
  std::shared_ptr<texture> t =
      c.get_or_create(1, [] { return weakref::make_shared<fancy_texture>("fancy"); });
  EXPECT_NE(dynamic_cast<fancy_texture*>(t.get()), nullptr);
  EXPECT_EQ(c.get(1), t);
}

TEST(cache, factory_returning_a_non_weakrefable_pointer_gets_type_error_and_stores_nothing) {
  weakref::cache<int, texture> c;
  std::weak_ptr<texture> made;
  auto message = type_error_message([&] {
    c.get_or_create(1, [&] {
      auto p = std::make_shared<texture>("std");
      made = p;
      return p;
    });
  });
  EXPECT_THAT(message, testing::HasSubstr("weakref::cache::get_or_create"));
  EXPECT_THAT(message, testing::HasSubstr("not created by weakref::make_shared"));
  EXPECT_TRUE(made.expired());  // released, not leaked
  EXPECT_EQ(c.size(), 0u);
  auto ok = c.get_or_create(1, [] { return texture("ok"); });  // the key is free again
  EXPECT_EQ(ok->name, "ok");
}

TEST(cache, factory_returning_null_returns_null_and_stores_nothing) {
  event_log log;
  tracked_cache c(2);
  auto none = c.get_or_create("a", [] { return std::shared_ptr<tracked>(); });
  EXPECT_EQ(none, nullptr);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_TRUE(c.recent_keys().empty());
  int calls = 0;
  auto a = c.get_or_create("a", counting_factory{&log, "a", &calls});
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(a->name(), "a");
}

TEST(cache, throwing_factory_propagates_and_the_next_caller_creates) {
  event_log log;
  tracked_cache c(1);
  EXPECT_THROW(
      c.get_or_create(
          "a", []() -> std::shared_ptr<tracked> { throw std::runtime_error("disk on fire"); }),
      std::runtime_error);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_TRUE(c.recent_keys().empty());
  int calls = 0;
  auto a = c.get_or_create("a", counting_factory{&log, "a", &calls});
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(c.get("a"), a);
}

TEST(cache, factory_may_ask_for_other_keys_also_in_the_same_shard) {
  event_log log;
  weakref::cache<std::string, tracked, same_hash> c;
  int calls = 0;
  std::shared_ptr<tracked> inner;
  auto outer = c.get_or_create("outer", [&] {
    inner = c.get_or_create("inner", counting_factory{&log, "inner", &calls});
    EXPECT_EQ(c.get("outer"), nullptr);  // not there until its factory returns
    return weakref::make_shared<tracked>(log, "outer");
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(c.get("inner"), inner);
  EXPECT_EQ(c.get("outer"), outer);
  EXPECT_EQ(c.size(), 2u);
}

TEST(cache, factory_asking_for_its_own_key_throws_logic_error_and_frees_the_key) {
  event_log log;
  tracked_cache c;
  std::string inner_error;
  EXPECT_THROW(c.get_or_create("a",
                               [&]() -> std::shared_ptr<tracked> {
                                 try {
                                   c.get_or_create("a", [] { return std::shared_ptr<tracked>(); });
                                 } catch (const std::logic_error& e) {
                                   inner_error = e.what();
                                   throw;
                                 }
                                 return nullptr;
                               }),
               std::logic_error);
  EXPECT_THAT(inner_error, testing::HasSubstr("asked for the same key"));
  int calls = 0;
  auto a = c.get_or_create("a", counting_factory{&log, "a", &calls});  // no stale creation left
  EXPECT_EQ(calls, 1);
}

TEST(cache, keep_recent_keeps_the_most_recent_values_alive_and_evicts_the_least_recent) {
  event_log log;
  tracked_cache c(2);
  int calls = 0;
  c.get_or_create("a", counting_factory{&log, "a", &calls});
  c.get_or_create("b", counting_factory{&log, "b", &calls});
  EXPECT_TRUE(log.events.empty());  // nobody holds them; the front does
  EXPECT_EQ(c.size(), 2u);
  EXPECT_THAT(c.recent_keys(), ElementsAre("b", "a"));
  c.get_or_create("c", counting_factory{&log, "c", &calls});
  EXPECT_THAT(log.events, ElementsAre("~a"));
  EXPECT_THAT(c.recent_keys(), ElementsAre("c", "b"));
  c.get_or_create("d", counting_factory{&log, "d", &calls});
  EXPECT_THAT(log.events, ElementsAre("~a", "~b"));
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(c.size(), 2u);
}

TEST(cache, hits_refresh_recency_get_or_create_and_get_alike) {
  event_log log;
  tracked_cache c(3);
  int calls = 0;
  for (const char* k : {"a", "b", "c"}) c.get_or_create(k, counting_factory{&log, k, &calls});
  c.get_or_create("a", counting_factory{&log, "a", &calls});  // hit: a is most recent
  EXPECT_THAT(c.recent_keys(), ElementsAre("a", "c", "b"));
  c.get("b");  // hit: b is most recent
  EXPECT_THAT(c.recent_keys(), ElementsAre("b", "a", "c"));
  c.get_or_create("d", counting_factory{&log, "d", &calls});
  c.get_or_create("e", counting_factory{&log, "e", &calls});
  EXPECT_THAT(log.events, ElementsAre("~c", "~a"));
  EXPECT_THAT(c.recent_keys(), ElementsAre("e", "d", "b"));
  EXPECT_EQ(calls, 5);
}

TEST(cache, contains_and_size_are_not_uses) {
  event_log log;
  tracked_cache c(2);
  int calls = 0;
  c.get_or_create("a", counting_factory{&log, "a", &calls});
  c.get_or_create("b", counting_factory{&log, "b", &calls});
  EXPECT_TRUE(c.contains("a"));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_THAT(c.recent_keys(), ElementsAre("b", "a"));
  c.get_or_create("c", counting_factory{&log, "c", &calls});
  EXPECT_THAT(log.events, ElementsAre("~a"));
}

TEST(cache, evicted_value_still_held_elsewhere_is_still_found_and_returns_to_the_front) {
  event_log log;
  tracked_cache c(1);
  int calls = 0;
  auto held = c.get_or_create("a", counting_factory{&log, "a", &calls});
  c.get_or_create("b", counting_factory{&log, "b", &calls});  // evicts a: alive thanks to `held`
  EXPECT_TRUE(log.events.empty());
  EXPECT_THAT(c.recent_keys(), ElementsAre("b"));
  EXPECT_EQ(c.get("a"), held);  // a hit: back in front, evicting b (nobody holds b)
  EXPECT_THAT(log.events, ElementsAre("~b"));
  EXPECT_THAT(c.recent_keys(), ElementsAre("a"));
  held.reset();
  EXPECT_THAT(log.events, ElementsAre("~b"));  // the front keeps a
  EXPECT_EQ(calls, 2);
}

TEST(cache, resize_recent_shrinks_from_the_least_recent_and_grows) {
  event_log log;
  tracked_cache c(3);
  int calls = 0;
  for (const char* k : {"a", "b", "c"}) c.get_or_create(k, counting_factory{&log, k, &calls});
  EXPECT_EQ(c.keep_recent(), 3u);
  c.resize_recent(1);
  EXPECT_EQ(c.keep_recent(), 1u);
  EXPECT_THAT(log.events, ElementsAre("~a", "~b"));
  EXPECT_THAT(c.recent_keys(), ElementsAre("c"));
  c.resize_recent(2);
  c.get_or_create("d", counting_factory{&log, "d", &calls});
  EXPECT_THAT(c.recent_keys(), ElementsAre("d", "c"));
  EXPECT_THAT(log.events, ElementsAre("~a", "~b"));
  c.resize_recent(0);
  EXPECT_THAT(log.events, ElementsAre("~a", "~b", "~c", "~d"));
  EXPECT_EQ(c.size(), 0u);
  c.get_or_create("e", counting_factory{&log, "e", &calls});  // off: dies at once
  EXPECT_THAT(log.events, ElementsAre("~a", "~b", "~c", "~d", "~e"));
  EXPECT_TRUE(c.recent_keys().empty());
}

TEST(cache, erase_forgets_the_key_and_its_place_in_front) {
  event_log log;
  tracked_cache c(2);
  int calls = 0;
  c.get_or_create("a", counting_factory{&log, "a", &calls});
  auto held = c.get_or_create("b", counting_factory{&log, "b", &calls});
  EXPECT_TRUE(c.erase("a"));
  EXPECT_THAT(log.events, ElementsAre("~a"));  // only the front held it
  EXPECT_FALSE(c.erase("a"));
  EXPECT_TRUE(c.erase("b"));
  EXPECT_THAT(log.events, ElementsAre("~a"));  // `held` keeps b alive, but the cache forgot it
  EXPECT_EQ(c.get("b"), nullptr);
  EXPECT_TRUE(c.recent_keys().empty());
  auto b2 = c.get_or_create("b", counting_factory{&log, "b2", &calls});
  EXPECT_NE(b2, held);
  EXPECT_EQ(calls, 3);
  EXPECT_FALSE(c.erase("nothing"));
}

TEST(cache, clear_forgets_every_key) {
  event_log log;
  tracked_cache c(2);
  int calls = 0;
  auto held = c.get_or_create("a", counting_factory{&log, "a", &calls});
  c.get_or_create("b", counting_factory{&log, "b", &calls});
  c.clear();
  EXPECT_THAT(log.events, ElementsAre("~b"));
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.get("a"), nullptr);
  EXPECT_TRUE(c.recent_keys().empty());
  EXPECT_EQ(held->name(), "a");
}

TEST(cache, destructor_releases_the_recent_values) {
  event_log log;
  {
    tracked_cache c(2);
    int calls = 0;
    c.get_or_create("a", counting_factory{&log, "a", &calls});
    c.get_or_create("b", counting_factory{&log, "b", &calls});
    EXPECT_TRUE(log.events.empty());
  }
  EXPECT_THAT(log.events, ElementsAre("~a", "~b"));  // least recent first, as evictions go
}

TEST(cache, custom_hash_and_equality) {
  struct lower_hash {
    std::size_t operator()(const std::string& s) const {
      std::string l;
      for (char ch : s) l += static_cast<char>(ch | 0x20);
      return std::hash<std::string>()(l);
    }
  };
  struct lower_equal {
    bool operator()(const std::string& a, const std::string& b) const {
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
      }
      return true;
    }
  };
  weakref::cache<std::string, texture, lower_hash, lower_equal> c(1);
  auto t = c.get_or_create("Grass", [](const std::string& k) { return texture(k); });
  EXPECT_EQ(c.get("GRASS"), t);
  EXPECT_THAT(c.recent_keys(), ElementsAre("Grass"));
  EXPECT_TRUE(c.erase("grass"));
  EXPECT_FALSE(c.contains("Grass"));
}

TEST(cache, many_keys_in_one_shard_and_over_all_shards) {
  weakref::cache<int, texture> spread;
  weakref::cache<int, texture, decltype([](int) { return std::size_t{7}; })> one_shard;
  std::vector<std::shared_ptr<texture>> held;
  for (int i = 0; i < 500; ++i) {
    held.push_back(spread.get_or_create(i, [i] { return texture(std::to_string(i)); }));
    held.push_back(one_shard.get_or_create(i, [i] { return texture(std::to_string(i)); }));
  }
  EXPECT_EQ(spread.size(), 500u);
  EXPECT_EQ(one_shard.size(), 500u);
  for (int i = 0; i < 500; ++i) {
    ASSERT_EQ(spread.get(i), held[2 * static_cast<std::size_t>(i)]) << i;
    ASSERT_EQ(one_shard.get(i), held[2 * static_cast<std::size_t>(i) + 1]) << i;
  }
  for (std::size_t i = 0; i < held.size(); i += 4) held[i].reset();  // every other key of spread
  EXPECT_EQ(spread.size(), 250u);
  EXPECT_EQ(one_shard.size(), 500u);
}

// A key that counts how many were made, and a transparent hash and equality that also take an
// int: lookups by int must find the keys without making one.
struct counted_key {
  explicit counted_key(int k) : id(k) { ++made; }
  counted_key(const counted_key& other) : id(other.id) { ++made; }
  int id;
  static inline int made = 0;
};
struct id_hash {
  using is_transparent = void;
  std::size_t operator()(const counted_key& k) const { return std::hash<int>()(k.id); }
  std::size_t operator()(int id) const { return std::hash<int>()(id); }
};
struct id_equal {
  using is_transparent = void;
  static int id_of(const counted_key& k) { return k.id; }
  static int id_of(int id) { return id; }
  bool operator()(const auto& a, const auto& b) const { return id_of(a) == id_of(b); }
};

template <class Cache, class Key>
concept looks_up_by = requires(Cache& c, const Key& k) {
  c.get(k);
  c.contains(k);
  c.erase(k);
};

// As std::unordered_map's (C++20): with a transparent Hash and KeyEqual, get, contains and erase
// take any key type they accept and make no K; a hit that enters the LRU front copies the
// stored key. Otherwise they take only K (and what converts to it).
TEST(cache, transparent_hash_and_equal_look_up_keys_of_other_types) {
  event_log log;
  weakref::cache<counted_key, tracked, id_hash, id_equal> c(2);
  int calls = 0;
  auto a = c.get_or_create(counted_key(1), counting_factory{&log, "a", &calls});
  auto b = c.get_or_create(counted_key(2), counting_factory{&log, "b", &calls});
  auto d = c.get_or_create(counted_key(3), counting_factory{&log, "d", &calls});  // front: 3, 2
  counted_key::made = 0;
  EXPECT_TRUE(c.contains(1));
  EXPECT_FALSE(c.contains(4));
  EXPECT_EQ(c.get(2), b);  // already in the front: moves to its head
  EXPECT_EQ(c.get(4), nullptr);
  EXPECT_EQ(counted_key::made, 0);
  EXPECT_EQ(c.get(1), a);  // enters the front, which copies the stored key; 3 leaves
  EXPECT_EQ(counted_key::made, 1);
  EXPECT_TRUE(c.erase(3));
  EXPECT_FALSE(c.erase(3));
  EXPECT_TRUE(c.erase(1));  // and its place in the front
  EXPECT_FALSE(c.erase(4));
  EXPECT_EQ(counted_key::made, 1);
  const auto recent = c.recent_keys();
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].id, 2);
  EXPECT_EQ(c.get(counted_key(2)), b);  // K itself still works
  EXPECT_FALSE(c.contains(counted_key(1)));
  EXPECT_EQ(calls, 3);

  static_assert(looks_up_by<decltype(c), int>);
  static_assert(looks_up_by<tracked_cache, std::string>);
  static_assert(looks_up_by<tracked_cache, const char*>);        // converts to std::string
  static_assert(!looks_up_by<tracked_cache, std::string_view>);  // no transparent hash: K only
}

// The usual case: std::string keys looked up by std::string_view; the front keeps the stored
// key, not the view.
TEST(cache, string_keys_looked_up_by_string_view) {
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  weakref::cache<std::string, texture, string_hash, std::equal_to<>> c(1);
  auto t = c.get_or_create("grass", [](const std::string& k) { return texture(k); });
  c.resize_recent(0);  // out of the front: the next hit enters it again
  c.resize_recent(1);
  std::string_view view = "grass";
  EXPECT_EQ(c.get(view), t);
  EXPECT_THAT(c.recent_keys(), ElementsAre("grass"));
  EXPECT_TRUE(c.contains(view));
  EXPECT_TRUE(c.erase(view));
  EXPECT_FALSE(c.contains(view));
  EXPECT_TRUE(c.recent_keys().empty());
}

// A value whose destructor uses the cache that held it: the cache must never release a value
// while it holds a lock (a std::mutex locked twice on one thread deadlocks).
struct reentrant {
  reentrant(weakref::cache<std::string, reentrant>& cache, event_log& log, std::string name)
      : cache_(&cache), log_(&log), name_(std::move(name)) {}
  ~reentrant() {
    auto other = cache_->get("other");
    log_->add("~" + name_ + (other ? " saw other" : " saw no other") + " size " +
              std::to_string(cache_->size()) + (cache_->contains(name_) ? " self" : ""));
    cache_->erase(name_ + "-child");
    if (name_ == "x") return;  // x's own release would recurse forever
    cache_->get_or_create("made-by-" + name_,
                          [&] { return weakref::make_shared<reentrant>(*cache_, *log_, "x"); });
  }

 private:
  weakref::cache<std::string, reentrant>* cache_;
  event_log* log_;
  std::string name_;
};

TEST(cache, value_destructors_may_call_into_the_cache_on_every_release_path) {
  event_log log;
  weakref::cache<std::string, reentrant> c;
  auto make = [&](const char* name) {
    return [&c, &log, name] { return weakref::make_shared<reentrant>(c, log, name); };
  };
  auto other = c.get_or_create("other", make("other"));
  // Released by its holder; its destructor's own creation "x" dies at once (nobody holds it).
  c.get_or_create("held", make("held")).reset();
  EXPECT_THAT(log.snapshot(), ElementsAre("~held saw other size 1", "~x saw other size 1"));
  // Evicted from the front by a creation and by a hit; erased; shrunk; cleared.
  c.resize_recent(1);
  c.get_or_create("e1", make("e1"));
  c.get_or_create("e2", make("e2"));
  c.get("other");
  c.get_or_create("erased", make("erased"));
  c.erase("erased");
  c.resize_recent(3);
  c.get_or_create("r1", make("r1"));
  c.get_or_create("r2", make("r2"));
  c.resize_recent(1);
  c.get_or_create("cleared", make("cleared"));
  c.clear();
  other.reset();
  std::vector<std::string> names;
  for (auto& e : log.snapshot()) names.push_back(e.substr(0, e.find(' ')));
  for (const char* name : {"~e1", "~e2", "~erased", "~r1", "~r2", "~cleared", "~other"}) {
    EXPECT_EQ(std::count(names.begin(), names.end(), name), 1) << name;
  }
  EXPECT_EQ(c.size(), c.recent_keys().size());  // what is left is held by the front only
}

}  // namespace
