// Tests for weakref::weak_set's set algebra: |, &, -, ^ and their assignment forms, issubset,
// issuperset, isdisjoint and ==, with members and order checked against CPython 3.11's WeakSet;
// results hold their members weakly; a member's destructor run by the operation (its last owner
// dropped on another thread) may destroy either operand; the reading forms on several threads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/tracked.hpp"
#include "support/weak_set_helpers.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_set.hpp"

namespace {

using testing::ElementsAre;
using weak_set_helpers::make;
using weak_set_helpers::names;
using weakref::getweakrefcount;
using weakref::weak_set;

// CPython 3.11: a = WeakSet([A, B, C, D]); b = WeakSet([E, C, A]) gives sorted(a | b) == ABCDE,
// a & b == AC, a - b == BD, b - a == E, a ^ b == BDE; a.issubset(b), a.issuperset(b) and
// a.isdisjoint(b) are False; (a & b) <= a, a >= (a & b), (a - b).isdisjoint(b) are True.
struct weak_set_algebra : testing::Test {
  event_log log;
  std::shared_ptr<tracked> A = make(log, "A"), B = make(log, "B"), C = make(log, "C"),
                           D = make(log, "D"), E = make(log, "E");
  weak_set<tracked> a{A, B, C, D}, b{E, C, A};
};

TEST_F(weak_set_algebra, operators_give_pythons_members_in_this_then_other_order) {
  EXPECT_THAT(names(a | b), ElementsAre("A", "B", "C", "D", "E"));
  EXPECT_THAT(names(b | a), ElementsAre("E", "C", "A", "B", "D"));
  EXPECT_THAT(names(a & b), ElementsAre("A", "C"));
  EXPECT_THAT(names(b & a), ElementsAre("C", "A"));
  EXPECT_THAT(names(a - b), ElementsAre("B", "D"));
  EXPECT_THAT(names(b - a), ElementsAre("E"));
  EXPECT_THAT(names(a ^ b), ElementsAre("B", "D", "E"));
  EXPECT_THAT(names(b ^ a), ElementsAre("E", "B", "D"));
  EXPECT_THAT(names(a), ElementsAre("A", "B", "C", "D"));  // operands unchanged
  EXPECT_THAT(names(b), ElementsAre("E", "C", "A"));
}

TEST_F(weak_set_algebra, assignment_forms_modify_in_place_and_return_this) {
  auto x = a;
  EXPECT_EQ(&(x |= b), &x);
  EXPECT_THAT(names(x), ElementsAre("A", "B", "C", "D", "E"));
  x = a;
  EXPECT_EQ(&(x &= b), &x);
  EXPECT_THAT(names(x), ElementsAre("A", "C"));
  x = a;
  EXPECT_EQ(&(x -= b), &x);
  EXPECT_THAT(names(x), ElementsAre("B", "D"));
  x = a;
  EXPECT_EQ(&(x ^= b), &x);
  EXPECT_THAT(names(x), ElementsAre("B", "D", "E"));
}

// &= erases as it goes; unless an iterator exists, erasing compacts the order once holes
// outnumber the members left, which moves the entries not yet visited.
TEST(weak_set_algebra_sizes, intersection_assignment_visits_every_member_across_compactions) {
  event_log log;
  std::vector<std::shared_ptr<tracked>> all;
  weak_set<tracked> x, every_tenth;
  for (int i = 0; i < 100; ++i) {
    all.push_back(make(log, std::to_string(i)));
    x.insert(all.back());
    if (i % 10 == 9) every_tenth.insert(all.back());
  }
  auto kept = x;
  x &= every_tenth;
  EXPECT_THAT(names(x), ElementsAre("9", "19", "29", "39", "49", "59", "69", "79", "89", "99"));
  auto it = kept.begin();  // no compaction while it exists
  kept &= every_tenth;
  EXPECT_THAT(names(kept), ElementsAre("9", "19", "29", "39", "49", "59", "69", "79", "89", "99"));
  EXPECT_EQ(*it, all[0]);  // erased, still held by the iterator
}

TEST_F(weak_set_algebra, in_place_on_self_like_python) {
  auto x = a;
  const auto& same = x;
  x |= same;
  EXPECT_THAT(names(x), ElementsAre("A", "B", "C", "D"));
  x &= same;
  EXPECT_THAT(names(x), ElementsAre("A", "B", "C", "D"));
  x -= same;  // Python: s -= s and s ^= s empty the set
  EXPECT_TRUE(x.empty());
  x = a;
  x ^= same;
  EXPECT_TRUE(x.empty());
}

TEST_F(weak_set_algebra, subset_superset_disjoint_and_equality) {
  EXPECT_FALSE(a.issubset(b));
  EXPECT_FALSE(a.issuperset(b));
  EXPECT_FALSE(a.isdisjoint(b));
  EXPECT_TRUE((a & b).issubset(a));
  EXPECT_TRUE(a.issuperset(a & b));
  EXPECT_TRUE((a - b).isdisjoint(b));
  weak_set<tracked> none;
  EXPECT_TRUE(none.issubset(a));
  EXPECT_TRUE(a.issuperset(none));
  EXPECT_TRUE(none.isdisjoint(none));
  EXPECT_FALSE(a == b);
  EXPECT_TRUE((a | b) == (b | a));  // order does not matter
  weak_set<tracked> c{C, A, E};
  EXPECT_TRUE(c == b);
  c.insert(B);
  EXPECT_FALSE(c == b);
  B.reset();  // dead members do not count
  EXPECT_TRUE(c == b);
}

TEST_F(weak_set_algebra, results_hold_their_members_weakly) {
  auto all = a | b, common = a & b, diff = a ^ b;
  EXPECT_EQ(getweakrefcount(A), 4u);  // a, b, all, common
  A.reset();
  EXPECT_THAT(log.events, ElementsAre("~A"));
  EXPECT_THAT(names(all), ElementsAre("B", "C", "D", "E"));
  EXPECT_THAT(names(common), ElementsAre("C"));
  E.reset();
  EXPECT_THAT(names(diff), ElementsAre("B", "D"));
  EXPECT_EQ(all.size(), 3u);
}

// The loops of -= and ^= let go of each element they pass (&= holds none). If another thread
// dropped its other owners meanwhile, that release runs the element's destructor on the looping
// thread, and the destructor may destroy the set being changed: the loop must stop there (it went
// on into the freed set: AddressSanitizer). Racy by nature, so many rounds; it never fails when
// the loops are right.
TEST(weak_set_algebra_hostile, assignment_forms_stop_when_a_released_element_destroys_the_set) {
  struct element {
    std::function<void()> on_death;
    ~element() { on_death(); }
  };
  enum class op { minus, symmetric, intersect };
  for (auto which : {op::minus, op::symmetric, op::intersect}) {
    for (int round = 0; round < 200; ++round) {
      auto target = std::make_unique<weak_set<element>>();
      weak_set<element> other;
      std::vector<std::shared_ptr<element>> owners;
      const auto looping = std::this_thread::get_id();
      for (int i = 0; i < 32; ++i) {
        auto e = weakref::make_shared<element>();
        e->on_death = [&target, looping] {
          if (std::this_thread::get_id() == looping) target.reset();
        };
        target->insert(e);
        other.insert(e);
        owners.push_back(std::move(e));
      }
      std::atomic<bool> ready{false}, go{false};  // both threads running before either goes
      std::thread dropper([&] {
        ready.store(true);
        while (!go.load()) {
        }
        owners.clear();
      });
      while (!ready.load()) {
      }
      go.store(true);
      switch (which) {
        case op::minus:
          *target -= other;
          break;
        case op::symmetric:
          *target ^= other;
          break;
        case op::intersect:
          *target &= other;
          break;
      }
      dropper.join();
    }
  }
}

// The reading members and the binary operators read one set while passing another's elements.
// If the operation lets go of an element it holds and that release is the last (another thread
// dropped the other owners meanwhile), the element's destructor runs on the operation's thread
// and may destroy or reshape either set; the operation read the freed set next
// (AddressSanitizer: heap-use-after-free). One round: x holds the victims, then `tail`; y holds
// the elements the case names. A second thread drops its owner of each victim as soon as it sees
// the operation hold it (a second reference), so that the operation's release is the last; a
// victim's destructor then hits the sets, on the operation's thread only.
struct racing_element {
  std::function<void()> on_death;
  ~racing_element() {
    if (on_death) on_death();
  }
};
using race_set = weak_set<racing_element>;

enum class hit { destroy_x, destroy_y, swap_x_away };

struct release_race {
  std::unique_ptr<race_set> x = std::make_unique<race_set>(), y = std::make_unique<race_set>();
  race_set bystander;  // swap_x_away: takes x's contents, then x is destroyed
  std::vector<std::shared_ptr<racing_element>> victims;
  std::shared_ptr<racing_element> tail = weakref::make_shared<racing_element>(),
                                  stranger = weakref::make_shared<racing_element>();

  // `in_y`: 'v' the victims, 't' tail, 's' stranger.
  release_race(hit what, std::string_view in_y) {
    for (int i = 0; i < 16; ++i) {
      auto v = weakref::make_shared<racing_element>();
      v->on_death = [this, what, looping = std::this_thread::get_id()] {
        if (std::this_thread::get_id() != looping) return;
        if (what == hit::destroy_y) {
          y.reset();
        } else if (x) {
          if (what == hit::swap_x_away) bystander.swap(*x);
          x.reset();
        }
      };
      x->insert(v);
      if (in_y.find('v') != in_y.npos) y->insert(v);
      victims.push_back(std::move(v));
    }
    x->insert(tail);
    if (in_y.find('t') != in_y.npos) y->insert(tail);
    if (in_y.find('s') != in_y.npos) y->insert(stranger);
  }

  // op(*x, *y) while a second thread drops the victims; returns what op returns.
  template <class Op>
  auto run(Op op) {
    std::atomic<bool> ready{false}, done{false};
    std::thread dropper([&ready, &done, owners = std::move(victims)]() mutable {
      ready.store(true);
      while (!done.load()) {
        for (auto& owner : owners) {
          if (owner.use_count() >= 2) owner.reset();
        }
      }
    });
    while (!ready.load()) {
    }
    struct joined {  // also if op returns void
      std::atomic<bool>& done;
      std::thread& dropper;
      ~joined() {
        done.store(true);
        dropper.join();
      }
    } join{done, dropper};
    return op(*x, *y);
  }
};

constexpr int race_rounds = 20;

TEST(weak_set_algebra_hostile, issubset_never_reads_a_set_a_release_destroyed) {
  for (int round = 0; round < race_rounds; ++round) {
    release_race r(hit::destroy_y, "vt");
    EXPECT_TRUE(r.run([](race_set& x, race_set& y) { return x.issubset(y); }));
  }
}

TEST(weak_set_algebra_hostile, issuperset_never_reads_a_set_a_release_destroyed) {
  for (int round = 0; round < race_rounds; ++round) {
    release_race r(hit::destroy_y, "vt");
    EXPECT_TRUE(r.run([](race_set& x, race_set& y) { return y.issuperset(x); }));
  }
}

TEST(weak_set_algebra_hostile, equality_never_reads_a_set_a_release_destroyed) {
  for (int round = 0; round < race_rounds; ++round) {
    release_race r(hit::destroy_y, "vt");
    EXPECT_TRUE(r.run([](race_set& x, race_set& y) { return x == y; }));
  }
}

TEST(weak_set_algebra_hostile, inequality_never_reads_a_set_a_release_destroyed) {
  for (int round = 0; round < race_rounds; ++round) {
    release_race r(hit::destroy_y, "vt");
    EXPECT_FALSE(r.run([](race_set& x, race_set& y) { return x != y; }));
  }
}

TEST(weak_set_algebra_hostile, isdisjoint_never_reads_a_set_a_release_destroyed) {
  for (int round = 0; round < race_rounds; ++round) {
    release_race r(hit::destroy_y, "s");
    EXPECT_TRUE(r.run([](race_set& x, race_set& y) { return x.isdisjoint(y); }));
  }
}

TEST(weak_set_algebra_hostile, intersection_assignment_never_reads_a_set_a_release_destroyed) {
  for (int round = 0; round < race_rounds; ++round) {
    release_race r(hit::destroy_y, "vt");
    r.run([](race_set& x, race_set& y) { x &= y; });
    EXPECT_TRUE(r.x->contains(r.tail));
  }
}

// &='s iterator follows this set's contents when they move, so it cannot tell that this set
// was destroyed after giving them to another.
TEST(weak_set_algebra_hostile,
     intersection_assignment_never_uses_itself_once_a_release_moved_and_destroyed_it) {
  for (int round = 0; round < race_rounds; ++round) {
    release_race r(hit::swap_x_away, "v");
    r.run([](race_set& x, race_set& y) { x &= y; });
    EXPECT_FALSE((r.x ? *r.x : r.bystander).contains(r.tail));
  }
}

TEST(weak_set_algebra_hostile, union_never_reads_a_set_a_release_destroyed) {
  for (int round = 0; round < race_rounds; ++round) {
    release_race r(hit::destroy_y, "vts");
    auto all = r.run([](race_set& x, race_set& y) { return x | y; });
    EXPECT_EQ(all.size(), 2u);  // the victims died
    EXPECT_TRUE(all.contains(r.tail) && all.contains(r.stranger));
  }
}

TEST(weak_set_algebra_hostile, intersection_never_reads_a_set_a_release_destroyed) {
  for (int round = 0; round < race_rounds; ++round) {
    release_race r(hit::destroy_y, "vt");
    auto common = r.run([](race_set& x, race_set& y) { return x & y; });
    EXPECT_EQ(common.size(), 1u);
    EXPECT_TRUE(common.contains(r.tail));
  }
}

TEST(weak_set_algebra_hostile, difference_never_reads_a_set_a_release_destroyed) {
  for (int round = 0; round < race_rounds; ++round) {
    release_race r(hit::destroy_y, "v");
    auto rest = r.run([](race_set& x, race_set& y) { return x - y; });
    EXPECT_EQ(rest.size(), 1u);
    EXPECT_TRUE(rest.contains(r.tail));
  }
}

TEST(weak_set_algebra_hostile, symmetric_difference_never_reads_a_set_a_release_destroyed) {
  for (int round = 0; round < race_rounds; ++round) {
    release_race r(hit::destroy_y, "vs");
    auto either = r.run([](race_set& x, race_set& y) { return x ^ y; });
    EXPECT_EQ(either.size(), 2u);
    EXPECT_TRUE(either.contains(r.tail) && either.contains(r.stranger));
  }
}

// ^ reads y while it passes x's elements, then x while it passes y's.

TEST(weak_set_algebra_hostile, symmetric_difference_never_reads_the_first_set_a_release_destroyed) {
  for (int round = 0; round < race_rounds; ++round) {
    release_race r(hit::destroy_x, "vs");
    auto either = r.run([](race_set& x, race_set& y) { return x ^ y; });
    EXPECT_EQ(either.size(), 2u);
    EXPECT_TRUE(either.contains(r.tail) && either.contains(r.stranger));
  }
}
// The reading members and the binary operators only read their operands (the const members'
// promise), so several threads may run them on the same sets at once while members die on
// another (ThreadSanitizer). No two results are compared for equality: a member dying between
// them may count in one and not yet in the other.
TEST(weak_set_algebra_threads, reading_members_and_operators_run_on_several_threads_at_once) {
  race_set a, b;
  std::vector<std::shared_ptr<racing_element>> kept, doomed;
  for (int i = 0; i < 200; ++i) {
    auto e = weakref::make_shared<racing_element>();
    a.insert(e);
    if (i % 2 == 0) b.insert(e);
    (i % 4 == 0 ? doomed : kept).push_back(std::move(e));
  }
  const race_set &ca = a, &cb = b;
  std::atomic<bool> go{false};
  auto reader = [&] {
    while (!go.load()) {
    }
    for (int round = 0; round < 20; ++round) {
      EXPECT_TRUE(cb.issubset(ca));
      EXPECT_TRUE(ca.issuperset(cb));
      EXPECT_FALSE(ca.isdisjoint(cb));
      EXPECT_TRUE(ca != cb);
      EXPECT_TRUE((ca & cb).issubset(cb));
      EXPECT_TRUE((ca | cb).issuperset(ca));  // members only die meanwhile
      EXPECT_TRUE((ca - cb).isdisjoint(cb));
      EXPECT_TRUE((ca ^ cb).isdisjoint(cb));
    }
  };
  std::thread first(reader), second(reader), killer([&] {
    while (!go.load()) {
    }
    doomed.clear();
  });
  go.store(true);
  first.join();
  second.join();
  killer.join();
}

}  // namespace
