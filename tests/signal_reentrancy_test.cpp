// Tests for weakref::signal: slots that change the signal during an emission. A slot disconnects
// itself, the next or the previous slot, connects new slots (not called by the running
// emission, even when the slot list grows), emits again, destroys objects (others' and its
// own), connections and scoped_connections, calls disconnect_all, or destroys the signal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/tracked.hpp"
#include "support/unraisable_log.hpp"
#include "weakref/ref.hpp"
#include "weakref/signal.hpp"

namespace {

using testing::ElementsAre;
using weakref::connection;
using weakref::scoped_connection;
using weakref::signal;

struct listener : tracked {
  using tracked::tracked;
  void on(int x) {
    log().add(name() + ":" + std::to_string(x));
    if (action) action(x);
  }
  std::function<void(int)> action;  // runs inside the slot, after logging
};

std::shared_ptr<listener> make(event_log& log, const char* name) {
  return weakref::make_shared<listener>(log, name);
}

auto logger(event_log& log, std::string name) {
  return [&log, name](int x) { log.add(name + ":" + std::to_string(x)); };
}

TEST(signal_reentrancy, a_slot_disconnects_itself) {
  event_log log;
  signal<void(int)> sig;
  sig.connect(logger(log, "a"));
  connection self;
  self = sig.connect([&](int x) {
    log.add("self:" + std::to_string(x));
    self.disconnect();
  });
  sig.connect(logger(log, "c"));
  sig(1);
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("a:1", "self:1", "c:1", "a:2", "c:2"));
  EXPECT_EQ(sig.size(), 2u);
}

TEST(signal_reentrancy, a_slot_disconnects_the_next_one_which_is_not_called) {
  event_log log;
  signal<void(int)> sig;
  connection next;
  sig.connect([&](int x) {
    log.add("a:" + std::to_string(x));
    next.disconnect();
  });
  next = sig.connect(logger(log, "b"));
  sig.connect(logger(log, "c"));
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("a:1", "c:1"));
}

TEST(signal_reentrancy, a_slot_disconnects_the_previous_one_which_already_ran) {
  event_log log;
  signal<void(int)> sig;
  connection previous = sig.connect(logger(log, "a"));
  sig.connect([&](int x) {
    log.add("b:" + std::to_string(x));
    previous.disconnect();
  });
  sig(1);
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("a:1", "b:1", "b:2"));
}

TEST(signal_reentrancy, a_slot_connected_during_an_emission_runs_from_the_next_one) {
  event_log log;
  signal<void(int)> sig;
  int added = 0;
  sig.connect([&](int x) {
    log.add("a:" + std::to_string(x));
    if (added++ == 0) sig.connect(logger(log, "new"));
  });
  sig.connect(logger(log, "b"));
  sig(1);
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("a:1", "b:1", "a:2", "b:2", "new:2"));
}

TEST(signal_reentrancy, many_slots_connected_during_an_emission_grow_the_list_safely) {
  event_log log;
  signal<void(int)> sig;
  bool first = true;
  sig.connect([&](int) {
    if (!first) return;
    first = false;
    for (int i = 0; i < 100; ++i)
      sig.connect([&log, i](int x) {
        if (i % 33 == 0) log.add(std::to_string(i) + ":" + std::to_string(x));
      });
  });
  sig.connect(logger(log, "b"));
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("b:1"));
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("b:1", "b:2", "0:2", "33:2", "66:2", "99:2"));
  EXPECT_EQ(sig.size(), 102u);
}

TEST(signal_reentrancy, a_slot_emits_again) {
  event_log log;
  signal<void(int)> sig;
  sig.connect([&](int x) {
    log.add("a:" + std::to_string(x));
    if (x < 3) sig(x + 1);
  });
  sig.connect(logger(log, "b"));
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("a:1", "a:2", "a:3", "b:3", "b:2", "b:1"));
}

TEST(signal_reentrancy, a_nested_emission_sees_disconnections_made_by_the_outer_one) {
  event_log log;
  signal<void(int)> sig;
  connection b;
  sig.connect([&](int x) {
    log.add("a:" + std::to_string(x));
    if (x == 1) {
      b.disconnect();
      sig(2);
    }
  });
  b = sig.connect(logger(log, "b"));
  sig.connect(logger(log, "c"));
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("a:1", "a:2", "c:2", "c:1"));
}

TEST(signal_reentrancy, a_slot_destroys_the_next_slots_object_which_is_not_called) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  signal<void(int)> sig;
  a->action = [&](int) { b.reset(); };
  sig.connect(a, &listener::on);
  sig.connect(b, &listener::on);
  sig.connect(c, &listener::on);
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("a:1", "~b", "c:1"));
  EXPECT_EQ(sig.size(), 2u);
}

TEST(signal_reentrancy, a_slot_destroys_the_previous_slots_object) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  signal<void(int)> sig;
  b->action = [&](int) { a.reset(); };
  sig.connect(a, &listener::on);
  sig.connect(b, &listener::on);
  sig(1);
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("a:1", "b:1", "~a", "b:2"));
}

TEST(signal_reentrancy, a_slot_drops_its_own_object_which_dies_after_the_slot_returns) {
  event_log log;
  auto a = make(log, "a");
  auto* raw = a.get();
  signal<void(int)> sig;
  a->action = [&](int) {
    a.reset();  // the emission still holds the object
    log.add("still alive: " + raw->name());
  };
  connection c = sig.connect(a, &listener::on);
  sig.connect(logger(log, "next"));
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("a:1", "still alive: a", "~a", "next:1"));
  EXPECT_FALSE(c.connected());
  EXPECT_EQ(sig.size(), 1u);
}

TEST(signal_reentrancy, a_slot_destroys_every_object_including_its_own) {
  event_log log;
  std::vector<std::shared_ptr<listener>> objects{make(log, "a"), make(log, "b"), make(log, "c")};
  signal<void(int)> sig;
  for (auto& obj : objects) sig.connect(obj, &listener::on);
  objects[1]->action = [&](int) {  // front to back (vector::clear's order is unspecified)
    for (auto& obj : objects) obj.reset();
    objects.clear();
  };
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("a:1", "b:1", "~a", "~c", "~b"));
  EXPECT_TRUE(sig.empty());
}

TEST(signal_reentrancy, a_callable_slot_destroying_its_own_connection_keeps_running_safely) {
  event_log log;
  signal<void(int)> sig;
  auto own = std::make_unique<scoped_connection>();
  auto text = std::make_shared<std::string>("captured");
  *own = sig.connect([&, text](int x) {
    own.reset();  // disconnects this slot; the emission still holds it (and `text`)
    log.add(*text + ":" + std::to_string(x));
  });
  sig.connect(logger(log, "b"));
  sig(1);
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("captured:1", "b:1", "b:2"));
  sig.clear();                     // drops the disconnected entries still listed
  EXPECT_EQ(text.use_count(), 1);  // nobody held the slot any more: its callable is gone
}

TEST(signal_reentrancy, a_slot_destroys_the_next_slots_scoped_connection) {
  event_log log;
  signal<void(int)> sig;
  auto next = std::make_unique<scoped_connection>();
  sig.connect([&](int x) {
    log.add("a:" + std::to_string(x));
    next.reset();
  });
  *next = sig.connect(logger(log, "b"));
  sig.connect(logger(log, "c"));
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("a:1", "c:1"));
}

TEST(signal_reentrancy, a_slot_destroys_plain_connections_which_changes_nothing) {
  event_log log;
  signal<void(int)> sig;
  std::vector<connection> connections;
  connections.push_back(sig.connect([&](int x) {
    log.add("a:" + std::to_string(x));
    connections.clear();
  }));
  connections.push_back(sig.connect(logger(log, "b")));
  sig(1);
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("a:1", "b:1", "a:2", "b:2"));
}

TEST(signal_reentrancy, a_slot_calls_disconnect_all_and_no_further_slot_runs) {
  event_log log;
  signal<void(int)> sig;
  sig.connect([&](int x) {
    log.add("a:" + std::to_string(x));
    sig.disconnect_all();
  });
  sig.connect(logger(log, "b"));
  sig(1);
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("a:1"));
  EXPECT_TRUE(sig.empty());
}

TEST(signal_reentrancy, a_slot_disconnects_many_slots_during_the_emission) {
  event_log log;
  signal<void(int)> sig;
  std::vector<connection> others;
  sig.connect([&](int x) {
    log.add("a:" + std::to_string(x));
    for (std::size_t i = 0; i < others.size(); ++i) {
      if (i != 50) others[i].disconnect();  // prunes the list while this emission walks it
    }
  });
  for (int i = 0; i < 100; ++i) others.push_back(sig.connect(logger(log, std::to_string(i))));
  sig(1);
  sig(2);
  EXPECT_THAT(log.events, ElementsAre("a:1", "50:1", "a:2", "50:2"));
  EXPECT_EQ(sig.size(), 2u);
}

TEST(signal_reentrancy, a_slot_destroys_the_signal_and_no_further_slot_runs) {
  event_log log;
  auto sig = std::make_unique<signal<void(int)>>();
  auto a = make(log, "a");
  auto token = std::make_shared<int>(0);
  connection later;
  sig->connect([&, token](int x) {
    log.add("killer:" + std::to_string(x));
    sig.reset();
    log.add("after reset");
  });
  later = sig->connect(a, &listener::on);
  sig->connect(logger(log, "c"));
  (*sig)(1);
  EXPECT_EQ(sig, nullptr);
  EXPECT_THAT(log.events, ElementsAre("killer:1", "after reset"));
  EXPECT_FALSE(later.connected());
  EXPECT_EQ(token.use_count(), 1);             // the killer slot was freed when the emission ended
  EXPECT_EQ(weakref::getweakrefcount(a), 0u);  // disconnected: no longer a weak reference
}

TEST(signal_reentrancy, a_throwing_slot_inside_a_nested_emission) {
  unraisable_log errors;
  event_log log;
  signal<void(int)> sig;
  sig.connect([&](int x) {
    log.add("a:" + std::to_string(x));
    if (x == 1) sig(2);
  });
  sig.connect([](int x) {
    if (x == 2) throw std::runtime_error("nested");
  });
  sig.connect(logger(log, "c"));
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("a:1", "a:2", "c:2", "c:1"));
  EXPECT_THAT(errors.entries, ElementsAre("weakref::signal slot: nested"));
}

TEST(signal_reentrancy, a_slot_moves_the_signal_away) {
  event_log log;
  signal<void(int)> sig;
  signal<void(int)> other;
  sig.connect([&](int x) {
    log.add("a:" + std::to_string(x));
    if (x == 1) other = std::move(sig);
  });
  sig.connect(logger(log, "b"));
  sig(1);  // the running emission keeps walking the slots it started with
  other(2);
  sig(3);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_THAT(log.events, ElementsAre("a:1", "b:1", "a:2", "b:2"));
}

// --- callables whose destructors reach the signal (run when their slots are released) ---

// A callable that runs `on_destroy` when its last copy goes, and counts the live ones.
struct destructor_hook {
  std::function<void()> on_destroy;
  ~destructor_hook() {
    if (on_destroy) on_destroy();
  }
};
struct hooked_callable {
  std::shared_ptr<destructor_hook> hook;
  void operator()(int) const {}
};

// The signal lives only in the callables of disconnected slots at the end of its list: the
// disconnection of its last live slot trims them, and their destructors destroy the signal and
// the very connection being disconnected (ASan: heap-use-after-free in slot_gone, which read the
// freed core after the trim; with 100 such slots, in trim's next round).
TEST(signal_reentrancy, a_disconnection_whose_trim_destroys_the_signal_and_the_connection) {
  for (int dead_tail : {17, 100}) {
    struct holder {
      signal<void(int)> sig;
      connection last;
    };
    auto h = std::make_shared<holder>();
    for (int i = 0; i < 200; ++i) h->sig.connect([](int) {});  // enough that nothing is pruned
    std::vector<connection> doomed;
    doomed.reserve(static_cast<std::size_t>(dead_tail));
    for (int i = 0; i < dead_tail; ++i) doomed.push_back(h->sig.connect([h](int) {}));
    h->last = h->sig.connect([](int) {});
    for (auto& c : doomed) c.disconnect();
    doomed.clear();
    std::weak_ptr<holder> watch = h;
    holder* raw = h.get();
    h.reset();  // the holder now lives in the dead slots' callables only
    ASSERT_FALSE(watch.expired());
    raw->last.disconnect();
    EXPECT_TRUE(watch.expired());
  }
}

// Moving a signal over one whose old callables connect to it when destroyed: they connect to
// its new contents, which stay connected (the old code dropped the new slot's core: a leak,
// and a slot never called).
TEST(signal_reentrancy, a_callable_destructor_connecting_during_a_move_assignment) {
  event_log log;
  signal<void(int)> sig;
  signal<void(int)> replacement;
  replacement.connect(logger(log, "new"));
  auto hook = std::make_shared<destructor_hook>();
  hook->on_destroy = [&] { sig.connect(logger(log, "late")); };
  sig.connect(hooked_callable{std::move(hook)});
  sig = std::move(replacement);
  EXPECT_EQ(sig.size(), 2u);
  sig(1);
  EXPECT_THAT(log.events, ElementsAre("new:1", "late:1"));
}

// A callable's destructor that connects to the signal being destroyed: that slot is
// disconnected and freed too (the old destructor leaked it with a new core).
TEST(signal_reentrancy, a_callable_destructor_connecting_during_the_signals_destruction) {
  auto counted = std::make_shared<int>(0);
  {
    auto sig = std::make_unique<signal<void(int)>>();
    auto hook = std::make_shared<destructor_hook>();
    hook->on_destroy = [raw = sig.get(), counted] { raw->connect([counted](int) {}); };
    sig->connect(hooked_callable{std::move(hook)});
    sig.reset();
  }
  EXPECT_EQ(counted.use_count(), 1);  // no slot kept a copy of the late callable
}

}  // namespace
