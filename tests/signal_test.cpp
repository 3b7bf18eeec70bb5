// Tests for weakref::signal, connection and scoped_connection: connection order, callable and
// tracked slots (member functions, const/base/noexcept ones, callables taking the object),
// disconnection by death, explicit and scoped disconnection, disconnect_all, size/empty,
// argument passing, throwing slots, moves and destruction, pruning of disconnected slots.
// Also: signal_reentrancy_test.cpp (slots changing the signal during an emission) and
// signal_threads_test.cpp.
#include "weakref/signal.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/multiple_bases.hpp"
#include "support/tracked.hpp"
#include "support/type_error_message.hpp"
#include "support/unraisable_log.hpp"
#include "weakref/ref.hpp"

namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using weakref::connection;
using weakref::scoped_connection;
using weakref::signal;

struct listener : tracked {
  using tracked::tracked;
  void on(int x) { log().add(name() + ":" + std::to_string(x)); }
  void on_const(int x) const { log().add(name() + " const:" + std::to_string(x)); }
  void on_noexcept(int x) noexcept { log().add(name() + " noexcept:" + std::to_string(x)); }
  int on_returning(int x) {
    log().add(name() + " returns:" + std::to_string(x));
    return x;
  }
};

std::shared_ptr<listener> make(event_log& log, const char* name) {
  return weakref::make_shared<listener>(log, name);
}

// A callable slot that logs "<name>:<x>".
auto logger(event_log& log, std::string name) {
  return [&log, name](int x) { log.add(name + ":" + std::to_string(x)); };
}

TEST(signal, slots_run_in_connection_order_callables_and_methods_mixed) {
  event_log log;
  auto a = make(log, "a"), c = make(log, "c");
  signal<void(int)> sig;
  sig.connect(a, &listener::on);
  sig.connect(logger(log, "b"));
  sig.connect(c, &listener::on);
  sig.connect(logger(log, "d"));
  sig(1);
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("a:1", "b:1", "c:1", "d:1", "a:2", "b:2", "c:2", "d:2"));
  EXPECT_EQ(sig.size(), 4u);
}

TEST(signal, an_empty_signal_emits_nothing) {
  signal<void(int)> sig;
  EXPECT_EQ(sig.size(), 0u);
  EXPECT_TRUE(sig.empty());
  sig(1);  // nothing to call
  EXPECT_TRUE(sig.empty());
}

TEST(signal, the_objects_death_disconnects_its_slots) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  signal<void(int)> sig;
  connection ca = sig.connect(a, &listener::on);
  connection ca2 = sig.connect(a, &listener::on_const);
  sig.connect(b, &listener::on);
  EXPECT_EQ(sig.size(), 3u);
  a.reset();
  EXPECT_EQ(sig.size(), 1u);
  EXPECT_FALSE(ca.connected());
  EXPECT_FALSE(ca2.connected());
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("~a", "b:1"));
}

TEST(signal, a_tracked_slot_does_not_keep_its_object_alive) {
  event_log log;
  auto a = make(log, "a");
  signal<void(int)> sig;
  auto c = sig.connect(a, &listener::on);
  EXPECT_EQ(a.use_count(), 1);
  weakref::ref<listener> r(a);
  a.reset();
  EXPECT_EQ(r(), nullptr);
  EXPECT_THAT(log.events, ElementsAre("~a"));
}

TEST(signal, a_tracked_slot_is_a_weak_reference_until_disconnected) {
  event_log log;
  auto a = make(log, "a");
  signal<void(int)> sig;
  EXPECT_EQ(weakref::getweakrefcount(a), 0u);
  auto c1 = sig.connect(a, &listener::on);
  auto c2 = sig.connect(a, &listener::on);
  EXPECT_EQ(weakref::getweakrefcount(a), 2u);
  c1.disconnect();
  EXPECT_EQ(weakref::getweakrefcount(a), 1u);
  sig.disconnect_all();
  EXPECT_EQ(weakref::getweakrefcount(a), 0u);
}

TEST(signal, callable_slots_live_until_disconnected) {
  event_log log;
  signal<void(int)> sig;
  connection c = sig.connect(logger(log, "f"));
  sig(1);
  EXPECT_TRUE(c.connected());
  c.disconnect();
  EXPECT_FALSE(c.connected());
  EXPECT_EQ(sig.size(), 0u);
  sig(2);
  c.disconnect();  // idempotent
  EXPECT_EQ(sig.size(), 0u);
  EXPECT_THAT(log.events, ElementsAre("f:1"));
}

TEST(signal, dropping_a_connection_does_not_disconnect) {
  event_log log;
  signal<void(int)> sig;
  { connection c = sig.connect(logger(log, "f")); }
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("f:1"));
}

TEST(signal, connection_copies_share_the_slot_and_compare_equal) {
  event_log log;
  signal<void(int)> sig;
  connection c = sig.connect(logger(log, "f"));
  connection copy = c;
  connection other = sig.connect(logger(log, "g"));
  EXPECT_TRUE(copy == c);
  EXPECT_FALSE(other == c);
  EXPECT_TRUE(connection() == connection());
  copy.disconnect();
  EXPECT_FALSE(c.connected());
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("g:1"));
}

TEST(signal, a_default_connection_is_not_connected) {
  connection c;
  EXPECT_FALSE(c.connected());
  c.disconnect();
  scoped_connection s;
  EXPECT_FALSE(s.connected());
}

TEST(signal, scoped_connection_disconnects_when_destroyed) {
  event_log log;
  signal<void(int)> sig;
  connection plain;
  {
    scoped_connection s = sig.connect(logger(log, "f"));
    plain = s.get();
    EXPECT_TRUE(s.connected());
    sig(1);
  }
  EXPECT_FALSE(plain.connected());
  EXPECT_EQ(sig.size(), 0u);
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("f:1"));
}

TEST(signal, scoped_connection_moves_and_move_assignment_disconnects_the_old_slot) {
  event_log log;
  signal<void(int)> sig;
  scoped_connection a = sig.connect(logger(log, "a"));
  scoped_connection b = sig.connect(logger(log, "b"));
  scoped_connection moved(std::move(a));
  EXPECT_FALSE(a.connected());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_TRUE(moved.connected());
  moved = std::move(b);  // disconnects "a", takes "b"
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("b:1"));
  moved = sig.connect(logger(log, "c"));  // disconnects "b"
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("b:1", "c:2"));
  EXPECT_EQ(sig.size(), 1u);
}

TEST(signal, scoped_connection_release_keeps_the_slot_connected) {
  event_log log;
  signal<void(int)> sig;
  connection kept;
  {
    scoped_connection s = sig.connect(logger(log, "f"));
    kept = s.release();
    EXPECT_FALSE(s.connected());
  }
  EXPECT_TRUE(kept.connected());
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("f:1"));
}

struct base_listener {
  explicit base_listener(event_log& l) : log(&l) {}
  virtual ~base_listener() = default;
  virtual void on(int x) { log->add("base:" + std::to_string(x)); }
  event_log* log;
};
struct derived_listener : base_listener {
  using base_listener::base_listener;
  void on(int x) override { log->add("derived:" + std::to_string(x)); }
};

TEST(signal, member_functions_const_noexcept_returning_and_of_a_base_class) {
  event_log log;
  auto a = make(log, "a");
  auto d = weakref::make_shared<derived_listener>(log);
  std::shared_ptr<const listener> ca = a;
  signal<void(int)> sig;
  sig.connect(a, &listener::on_const);
  sig.connect(ca, &listener::on_const);  // through a pointer to const
  sig.connect(a, &listener::on_noexcept);
  sig.connect(a, &listener::on_returning);  // the result is discarded
  sig.connect(d, &base_listener::on);       // virtual: calls derived_listener::on
  sig(1);
  EXPECT_THAT(log.events,
              ElementsAre("a const:1", "a const:1", "a noexcept:1", "a returns:1", "derived:1"));
}

TEST(signal, a_callable_taking_the_object_is_tracked_too) {
  event_log log;
  auto a = make(log, "a");
  signal<void(int)> sig;
  connection c = sig.connect(a, [](listener& l, int x) { l.on(x * 10); });
  sig(1);
  a.reset();
  EXPECT_FALSE(c.connected());
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("a:10", "~a"));
}

TEST(signal, tracked_slots_accept_base_class_and_aliasing_pointers) {
  auto d = weakref::make_shared<multiple_bases::derived>(7);
  std::shared_ptr<multiple_bases::base_b> b = d;
  std::shared_ptr<multiple_bases::base_b> alias(d, &d->inner);
  std::vector<int> seen;
  signal<void()> sig;
  sig.connect(b, [&](multiple_bases::base_b& x) { seen.push_back(x.b); });
  sig.connect(alias, [&](multiple_bases::base_b& x) { seen.push_back(&x == &d->inner); });
  sig();
  EXPECT_THAT(seen, ElementsAre(2, 1));
  b.reset();
  alias.reset();
  d.reset();
  EXPECT_TRUE(sig.empty());
}

TEST(signal, connecting_a_non_weakrefable_object_throws_type_error) {
  event_log log;
  signal<void(int)> sig;
  auto plain = std::make_shared<listener>(log, "plain");
  EXPECT_THAT(type_error_message([&] { sig.connect(plain, &listener::on); }),
              HasSubstr("weakref::signal::connect: this std::shared_ptr was not created by "
                        "weakref::make_shared"));
  EXPECT_THAT(type_error_message([&] { sig.connect(std::shared_ptr<listener>(), &listener::on); }),
              HasSubstr("weakref::signal::connect: the std::shared_ptr is empty"));
  EXPECT_EQ(sig.size(), 0u);
  sig(1);
  EXPECT_TRUE(log.events.empty());
}

TEST(signal, disconnect_all_and_clear_disconnect_every_slot) {
  event_log log;
  auto a = make(log, "a");
  signal<void(int)> sig;
  connection c1 = sig.connect(a, &listener::on);
  connection c2 = sig.connect(logger(log, "f"));
  sig.disconnect_all();
  EXPECT_FALSE(c1.connected());
  EXPECT_FALSE(c2.connected());
  EXPECT_TRUE(sig.empty());
  sig(1);
  connection c3 = sig.connect(logger(log, "g"));  // usable afterwards
  sig(2);
  sig.clear();
  EXPECT_FALSE(c3.connected());
  sig(3);
  EXPECT_THAT(log.events, ElementsAre("g:2"));
}

TEST(signal, size_counts_connected_slots_only) {
  event_log log;
  auto a = make(log, "a");
  signal<void(int)> sig;
  auto c1 = sig.connect(logger(log, "f"));
  auto c2 = sig.connect(a, &listener::on);
  auto c3 = sig.connect(logger(log, "g"));
  EXPECT_EQ(sig.size(), 3u);
  EXPECT_FALSE(sig.empty());
  c1.disconnect();
  EXPECT_EQ(sig.size(), 2u);
  a.reset();
  EXPECT_EQ(sig.size(), 1u);
  c3.disconnect();
  EXPECT_EQ(sig.size(), 0u);
  EXPECT_TRUE(sig.empty());
}

TEST(signal, by_value_arguments_are_copied_per_slot_references_are_shared) {
  signal<void(std::string, int&)> sig;
  std::vector<std::string> seen;
  sig.connect([&](std::string s, int& n) {
    seen.push_back(s);
    s = "changed";  // the next slot still gets the original
    ++n;
  });
  sig.connect([&](const std::string& s, int& n) {
    seen.push_back(s);
    n += 10;
  });
  int n = 0;
  sig("event", n);
  EXPECT_THAT(seen, ElementsAre("event", "event"));
  EXPECT_EQ(n, 11);
}

TEST(signal, an_rvalue_reference_parameter_is_passed_as_an_rvalue) {
  signal<void(std::unique_ptr<int> &&)> sig;
  std::vector<int> seen;
  sig.connect([&](std::unique_ptr<int>&& p) { seen.push_back(p ? *p : -1); });
  sig.connect([&](std::unique_ptr<int>&& p) {
    auto taken = std::move(p);
    seen.push_back(taken ? *taken : -1);
  });
  sig.connect([&](std::unique_ptr<int>&& p) { seen.push_back(p ? *p : -1); });
  sig(std::make_unique<int>(5));
  EXPECT_THAT(seen, ElementsAre(5, 5, -1));  // the second slot moved it out
}

TEST(signal, a_throwing_slot_goes_to_the_unraisable_hook_and_the_next_slots_run) {
  unraisable_log errors;
  event_log log;
  auto a = make(log, "a");
  signal<void(int)> sig;
  sig.connect(logger(log, "f"));
  sig.connect([](int) { throw std::runtime_error("boom"); });
  sig.connect(a, [](listener&, int) { throw std::logic_error("tracked boom"); });
  sig.connect(a, &listener::on);
  sig(1);
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("f:1", "a:1", "f:2", "a:2"));
  EXPECT_THAT(errors.entries,
              ElementsAre("weakref::signal slot: boom", "weakref::signal slot: tracked boom",
                          "weakref::signal slot: boom", "weakref::signal slot: tracked boom"));
  EXPECT_EQ(sig.size(), 4u);  // throwing does not disconnect
}

TEST(signal, destroying_the_signal_disconnects_its_slots_and_frees_the_callables) {
  auto token = std::make_shared<int>(0);
  connection c;
  {
    signal<void()> sig;
    c = sig.connect([token] {});
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_FALSE(c.connected());
  c.disconnect();  // the signal is gone: harmless
  // The connection still holds the slot (as Boost's does); dropping it frees the callable.
  EXPECT_EQ(token.use_count(), 2);
  c = connection();
  EXPECT_EQ(token.use_count(), 1);
}

TEST(signal, destroying_the_signal_unlinks_its_tracked_slots) {
  event_log log;
  auto a = make(log, "a");
  {
    signal<void(int)> sig;
    sig.connect(a, &listener::on);
    EXPECT_EQ(weakref::getweakrefcount(a), 1u);
  }
  EXPECT_EQ(weakref::getweakrefcount(a), 0u);
}

TEST(signal, moving_a_signal_moves_its_slots_and_connections_follow) {
  event_log log;
  signal<void(int)> sig;
  connection c = sig.connect(logger(log, "f"));
  signal<void(int)> moved(std::move(sig));
  moved(1);
  sig(2);  // NOLINT(bugprone-use-after-move): moved-from is empty and usable
  EXPECT_EQ(sig.size(), 0u);
  EXPECT_EQ(moved.size(), 1u);
  sig.connect(logger(log, "g"));
  sig(3);
  c.disconnect();
  moved(4);
  EXPECT_THAT(log.events, ElementsAre("f:1", "g:3"));

  signal<void(int)> target;
  connection t = target.connect(logger(log, "t"));
  target = std::move(sig);  // target's own slots are disconnected
  EXPECT_FALSE(t.connected());
  target(5);
  EXPECT_THAT(log.events, ElementsAre("f:1", "g:3", "g:5"));
}

TEST(signal, disconnected_callables_are_freed_once_they_outnumber_the_live_ones) {
  auto token = std::make_shared<int>(0);
  signal<void()> sig;
  auto keep = sig.connect([] {});
  std::vector<connection> dropped;
  for (int i = 0; i < 100; ++i) dropped.push_back(sig.connect([token] {}));
  EXPECT_EQ(token.use_count(), 101);
  for (auto& c : dropped) c.disconnect();
  dropped.clear();  // the connections no longer hold the slots
  // Disconnected entries are dropped (lazily) once they outnumber half the live ones by 16:
  // with one live slot, at most 16 disconnected callables stay listed.
  EXPECT_LE(token.use_count(), 1 + 16);
  EXPECT_GT(token.use_count(), 1);
  EXPECT_EQ(sig.size(), 1u);
  EXPECT_TRUE(keep.connected());
  sig.clear();
  EXPECT_EQ(token.use_count(), 1);
}

// Counts the blocks freed: an object's block is freed once no weak reference (slot) holds it.
template <class T>
struct counting_allocator {
  using value_type = T;
  explicit counting_allocator(int* frees) noexcept : frees(frees) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& other) noexcept : frees(other.frees) {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept {
    ++*frees;
    std::allocator<T>().deallocate(p, n);
  }
  friend bool operator==(const counting_allocator& a, const counting_allocator& b) noexcept {
    return a.frees == b.frees;
  }
  int* frees;
};

TEST(signal, dead_objects_slots_are_pruned_so_the_objects_memory_is_freed) {
  event_log log;
  int frees = 0;
  signal<void(int)> sig;
  for (int i = 0; i < 100; ++i) {
    auto obj = weakref::allocate_shared<listener>(counting_allocator<listener>(&frees), log, "x");
    sig.connect(obj, &listener::on);  // the object dies at the end of this iteration
  }
  EXPECT_EQ(sig.size(), 0u);
  EXPECT_EQ(log.size(), 100u);
  // Dead entries are dropped once they outnumber the live ones by 16: at most 16 still hold
  // their object's block.
  EXPECT_GE(frees, 100 - 16);
  EXPECT_LT(frees, 100);
  sig.clear();
  EXPECT_EQ(frees, 100);
}

TEST(signal, a_slot_connected_many_times_runs_once_per_connection) {
  event_log log;
  auto a = make(log, "a");
  signal<void(int)> sig;
  sig.connect(a, &listener::on);
  sig.connect(a, &listener::on);
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("a:1", "a:1"));
}

}  // namespace
