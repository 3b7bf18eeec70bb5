// Tests for weakref::weak_set's set algebra: |, &, -, ^ and their assignment forms, issubset,
// issuperset, isdisjoint and ==, with members and order checked against CPython 3.11's WeakSet;
// results hold their members weakly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
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

// The loops of -=, ^= and &= let go of each element they pass. If another thread dropped its
// other owners meanwhile, that release runs the element's destructor on the looping thread,
// and the destructor may destroy the set being changed: the loop must stop there (it went on
// into the freed set: AddressSanitizer). Racy by nature, so many rounds; it never fails when
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

}  // namespace
