// Tests for weakref::weak_set: the std-style and Python-style members, identity, insertion
// order, members leaving on death, iteration (strong refs, the observer bug, mutation while
// iterating), set algebra (membership checked against CPython 3.11 WeakSet), getweakrefcount
// bookkeeping, non-weakrefable pointers and lifetimes (set before members, one member in many).
#include "weakref/weak_set.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/tracked.hpp"
#include "weakref/ref.hpp"

namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using weakref::getweakrefcount;
using weakref::weak_set;

std::shared_ptr<tracked> make(event_log& log, std::string name) {
  return weakref::make_shared<tracked>(log, std::move(name));
}

template <class T>
std::vector<std::string> names(const weak_set<T>& s) {
  std::vector<std::string> result;
  for (const auto& member : s) result.push_back(member->name());
  return result;
}

struct base_a {
  virtual ~base_a() = default;
  int a = 1;
};
struct base_b {
  virtual ~base_b() = default;
  int b = 2;
};
struct derived : base_a, base_b {};  // base_b sits at a non-zero offset

struct observer : tracked {
  using tracked::tracked;
  std::function<void()> on_notify;
  void notify() {
    log().add("notify " + name());
    if (on_notify) on_notify();
  }
};

TEST(weak_set, insert_adds_once_and_returns_the_members_position) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  weak_set<tracked> s;
  auto [it, added] = s.insert(a);
  EXPECT_TRUE(added);
  EXPECT_EQ(*it, a);
  auto [again, added_again] = s.insert(a);
  EXPECT_FALSE(added_again);
  EXPECT_EQ(*again, a);
  s.add(b);
  s.add(b);
  EXPECT_EQ(s.size(), 2u);
  EXPECT_FALSE(s.empty());
  EXPECT_THAT(names(s), ElementsAre("a", "b"));
}

TEST(weak_set, contains_count_and_find_look_up_members) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  weak_set<tracked> s{a};
  EXPECT_TRUE(s.contains(a));
  EXPECT_FALSE(s.contains(b));
  EXPECT_EQ(s.count(a), 1u);
  EXPECT_EQ(s.count(b), 0u);
  ASSERT_NE(s.find(a), s.end());
  EXPECT_EQ(*s.find(a), a);
  EXPECT_EQ(s.find(b), s.end());
}

TEST(weak_set, equal_valued_objects_are_distinct_members) {
  auto x = weakref::make_shared<int>(5), y = weakref::make_shared<int>(5);
  weak_set<int> s{x, y};
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.erase(y), 1u);
  EXPECT_TRUE(s.contains(x));
  EXPECT_FALSE(s.contains(y));
}

TEST(weak_set, base_class_and_aliasing_pointers_of_one_object_are_one_member) {
  auto d = weakref::make_shared<derived>();
  weak_set<base_b> bases;
  EXPECT_TRUE(bases.insert(std::shared_ptr<base_b>(d)).second);
  EXPECT_FALSE(bases.insert(std::shared_ptr<base_b>(d)).second);
  EXPECT_EQ(bases.begin()->get(), static_cast<base_b*>(d.get()));  // the adjusted pointer

  struct two_ints {
    int first = 1, second = 2;
  };
  auto owner = weakref::make_shared<two_ints>();
  std::shared_ptr<int> first(owner, &owner->first), second(owner, &owner->second);
  weak_set<int> ints{first};
  auto [it, added] = ints.insert(second);
  EXPECT_FALSE(added);
  EXPECT_EQ(it->get(), &owner->first);  // the member keeps the pointer it was inserted with
  EXPECT_TRUE(ints.contains(second));
  EXPECT_EQ(ints.erase(second), 1u);
  EXPECT_TRUE(ints.empty());
}

TEST(weak_set, erase_discard_and_remove) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  weak_set<tracked> s{a, b, c};
  EXPECT_EQ(s.erase(b), 1u);
  EXPECT_EQ(s.erase(b), 0u);
  s.discard(c);
  s.discard(c);
  EXPECT_THROW(s.remove(b), std::out_of_range);  // Python: KeyError
  EXPECT_THAT(names(s), ElementsAre("a"));
  s.remove(a);
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(log.events.empty());  // leaving the set never kills the object
}

TEST(weak_set, pop_removes_the_newest_live_member_and_throws_when_empty) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  weak_set<tracked> s{a, b, c};
  c.reset();  // the newest is dead: pop skips it
  auto popped = s.pop();
  EXPECT_EQ(popped, b);
  EXPECT_EQ(getweakrefcount(popped), 0u);
  EXPECT_EQ(s.pop(), a);
  EXPECT_THROW(s.pop(), std::out_of_range);  // Python: KeyError('pop from empty WeakSet')
  EXPECT_EQ(s.size(), 0u);
}

TEST(weak_set, clear_empties_the_set_and_releases_its_weak_references) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  weak_set<tracked> s{a, b};
  s.clear();
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.begin(), s.end());
  EXPECT_EQ(getweakrefcount(a), 0u);
  s.insert(b);
  s.insert(a);
  EXPECT_THAT(names(s), ElementsAre("b", "a"));
  EXPECT_TRUE(log.events.empty());
}

TEST(weak_set, iterates_in_insertion_order_and_reinsertion_moves_to_the_end) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  weak_set<tracked> s;
  for (const auto& p : {c, a, b}) s.insert(p);
  EXPECT_THAT(names(s), ElementsAre("c", "a", "b"));
  s.insert(c);  // already present: keeps its place
  s.erase(a);
  s.insert(a);
  EXPECT_THAT(names(s), ElementsAre("c", "b", "a"));
}

TEST(weak_set, members_leave_on_death_and_order_survives_compaction) {
  event_log log;
  std::vector<std::shared_ptr<tracked>> owners;
  weak_set<tracked> s;
  for (int i = 0; i < 40; ++i) s.insert(owners.emplace_back(make(log, std::to_string(i))));
  owners[1].reset();
  EXPECT_THAT(log.events, ElementsAre("~1"));
  EXPECT_EQ(s.size(), 39u);
  for (std::size_t i = 2; i < owners.size(); ++i) {
    if (i % 4 != 0) owners[i].reset();  // enough tombstones to compact
  }
  EXPECT_EQ(s.size(), 10u);
  EXPECT_THAT(names(s), ElementsAre("0", "4", "8", "12", "16", "20", "24", "28", "32", "36"));
  owners[8].reset();  // a death after compaction still finds its entry
  owners[36].reset();
  s.insert(owners[1] = make(log, "new"));
  EXPECT_THAT(names(s), ElementsAre("0", "4", "12", "16", "20", "24", "28", "32", "new"));
  EXPECT_EQ(s.size(), 9u);
}

TEST(weak_set, iteration_keeps_the_current_member_alive_until_the_next_step) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  weak_set<tracked> s{a, b};
  for (const auto& member : s) {
    if (member == a) a.reset();  // the only outside owner
    log.add("body " + member->name());
  }
  EXPECT_THAT(log.events, ElementsAre("body a", "~a", "body b"));
  EXPECT_EQ(s.size(), 1u);
}

TEST(weak_set, observer_dropping_another_observer_while_notified_is_safe) {
  event_log log;
  std::vector<std::shared_ptr<observer>> owners;
  for (const char* name : {"a", "b", "c", "d"}) {
    owners.push_back(weakref::make_shared<observer>(log, name));
  }
  weak_set<observer> subscribers(owners.begin(), owners.end());
  owners[1]->on_notify = [&] { owners[2].reset(); };  // b drops c, not yet notified
  owners[3]->on_notify = [&] { owners[0].reset(); };  // d drops a, already notified
  for (const auto& o : subscribers) o->notify();
  EXPECT_THAT(log.events, ElementsAre("notify a", "notify b", "~c", "notify d", "~a"));
  EXPECT_EQ(subscribers.size(), 2u);
  EXPECT_THAT(names(subscribers), ElementsAre("b", "d"));
}

TEST(weak_set, inserting_during_iteration_is_safe_and_new_members_are_visited) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  std::vector<std::shared_ptr<tracked>> added;
  weak_set<tracked> s{a, b};
  std::vector<std::string> seen;
  for (const auto& member : s) {
    seen.push_back(member->name());
    if (member != a) continue;
    s.insert(b);  // present: no change
    for (int i = 0; i < 40; ++i) s.insert(added.emplace_back(make(log, "n" + std::to_string(i))));
  }
  ASSERT_EQ(seen.size(), 42u);
  EXPECT_EQ(seen[0], "a");
  EXPECT_EQ(seen[1], "b");
  EXPECT_EQ(seen[41], "n39");
  EXPECT_EQ(s.size(), 42u);
}

TEST(weak_set, erase_iterator_in_a_loop_returns_the_next_live_member) {
  event_log log;
  std::vector<std::shared_ptr<tracked>> o;
  for (const char* name : {"a", "b", "c", "d", "e", "f"}) o.push_back(make(log, name));
  weak_set<tracked> s(o.begin(), o.end());
  for (auto it = s.begin(); it != s.end();) {
    auto n = (*it)->name();
    if (n == "b" || n == "c" || n == "e") {
      it = s.erase(it);
    } else {
      ++it;
    }
  }
  EXPECT_THAT(names(s), ElementsAre("a", "d", "f"));
  EXPECT_EQ(getweakrefcount(o[1]), 0u);
  o[3].reset();                       // d dies
  auto next = s.erase(s.find(o[0]));  // skips dead d
  ASSERT_NE(next, s.end());
  EXPECT_EQ(*next, o[5]);
  EXPECT_EQ(s.erase(next), s.end());
  EXPECT_TRUE(s.empty());
}

TEST(weak_set, erasing_by_value_during_iteration_skips_the_erased_members) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c"), d = make(log, "d");
  weak_set<tracked> s{a, b, c, d};
  std::vector<std::string> seen;
  for (const auto& member : s) {
    seen.push_back(member->name());
    if (member == b) {
      s.erase(member);
      s.erase(c);
    }
  }
  EXPECT_THAT(seen, ElementsAre("a", "b", "d"));
  EXPECT_THAT(names(s), ElementsAre("a", "d"));
}

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

TEST(weak_set, copies_are_independent) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  weak_set<tracked> s{a, b};
  auto copied = s.copy();
  weak_set<tracked> constructed(s), assigned;
  assigned = s;
  copied.insert(c);
  s.erase(a);
  assigned.erase(b);
  EXPECT_THAT(names(s), ElementsAre("b"));
  EXPECT_THAT(names(copied), ElementsAre("a", "b", "c"));
  EXPECT_THAT(names(constructed), ElementsAre("a", "b"));
  EXPECT_THAT(names(assigned), ElementsAre("a"));
  b.reset();
  EXPECT_TRUE(s.empty());
  EXPECT_THAT(names(copied), ElementsAre("a", "c"));
  EXPECT_THAT(names(constructed), ElementsAre("a"));
}

TEST(weak_set, update_and_constructors_take_ranges_of_shared_ptrs) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c"), d = make(log, "d");
  std::vector<std::shared_ptr<tracked>> v{b, a, b, c};
  weak_set<tracked> s{a};
  s.update(v);
  EXPECT_THAT(names(s), ElementsAre("a", "b", "c"));
  s.update({d, a});
  EXPECT_THAT(names(s), ElementsAre("a", "b", "c", "d"));
  weak_set<tracked> from_range(v.begin(), v.end()), other{d};
  EXPECT_THAT(names(from_range), ElementsAre("b", "a", "c"));
  other.update(from_range);
  EXPECT_THAT(names(other), ElementsAre("d", "b", "a", "c"));
}

TEST(weak_set, getweakrefcount_counts_one_per_set_membership) {
  event_log log;
  auto a = make(log, "a");
  weak_set<tracked> s1, s2;
  EXPECT_EQ(getweakrefcount(a), 0u);
  s1.insert(a);
  EXPECT_EQ(getweakrefcount(a), 1u);
  s1.insert(a);  // CPython: re-adding a member keeps the count
  EXPECT_EQ(getweakrefcount(a), 1u);
  s2.insert(a);
  EXPECT_EQ(getweakrefcount(a), 2u);
  {
    auto both = s1 | s2;
    EXPECT_EQ(getweakrefcount(a), 3u);
  }
  EXPECT_EQ(getweakrefcount(a), 2u);
  s1.erase(a);
  EXPECT_EQ(getweakrefcount(a), 1u);
  s2.clear();
  EXPECT_EQ(getweakrefcount(a), 0u);
}

TEST(weak_set, inserting_a_non_weakrefable_or_empty_pointer_throws_type_error) {
  event_log log;
  auto a = make(log, "a");
  auto plain = std::make_shared<tracked>(log, "plain");
  weak_set<tracked> s{a};
  try {
    s.insert(plain);
    ADD_FAILURE() << "no type_error";
  } catch (const weakref::type_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("was not created by weakref::make_shared"));
  }
  try {
    s.add(nullptr);
    ADD_FAILURE() << "no type_error";
  } catch (const weakref::type_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("is empty"));
  }
  std::vector<std::shared_ptr<tracked>> mixed{plain};
  EXPECT_THROW(s.update(mixed), std::invalid_argument);
  EXPECT_THAT(names(s), ElementsAre("a"));
}

TEST(weak_set, looking_up_a_non_weakrefable_pointer_finds_nothing_without_throwing) {
  event_log log;
  auto a = make(log, "a");
  auto plain = std::make_shared<tracked>(log, "plain");
  std::shared_ptr<tracked> empty;
  weak_set<tracked> s{a};
  static_assert(noexcept(s.contains(plain))&& noexcept(s.erase(plain)));
  EXPECT_FALSE(s.contains(plain));
  EXPECT_FALSE(s.contains(empty));
  EXPECT_EQ(s.count(plain), 0u);
  EXPECT_EQ(s.find(plain), s.end());
  EXPECT_EQ(s.erase(plain), 0u);
  s.discard(empty);
  EXPECT_THROW(s.remove(plain), std::out_of_range);  // Python: TypeError (docs/python-differences)
  EXPECT_THAT(names(s), ElementsAre("a"));
}

TEST(weak_set, set_destroyed_before_its_members_lets_them_go) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  {
    weak_set<tracked> s{a, b};
    auto c = make(log, "c");
    s.insert(c);
    c.reset();  // its death is still waiting in the set's inbox
    EXPECT_EQ(getweakrefcount(a), 1u);
  }
  EXPECT_EQ(getweakrefcount(a), 0u);
  EXPECT_EQ(getweakrefcount(b), 0u);
  a.reset();
  b.reset();
  EXPECT_THAT(log.events, ElementsAre("~c", "~a", "~b"));
}

TEST(weak_set, member_of_many_sets_dies_once_and_leaves_them_all) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b");
  weak_set<tracked> s1{a, b}, s2{b, a}, s3{a};
  EXPECT_EQ(getweakrefcount(a), 3u);
  a.reset();
  EXPECT_THAT(log.events, ElementsAre("~a"));
  EXPECT_THAT(names(s1), ElementsAre("b"));
  EXPECT_THAT(names(s2), ElementsAre("b"));
  EXPECT_TRUE(s3.empty());
  EXPECT_EQ(s3.begin(), s3.end());
}

TEST(weak_set, moved_from_set_is_reusable_and_deaths_follow_the_members) {
  event_log log;
  auto a = make(log, "a"), b = make(log, "b"), c = make(log, "c");
  weak_set<tracked> s{a, b};
  weak_set<tracked> t(std::move(s));
  s.clear();
  EXPECT_TRUE(s.empty());
  s.insert(c);
  a.reset();
  EXPECT_THAT(names(t), ElementsAre("b"));
  EXPECT_THAT(names(s), ElementsAre("c"));
  t = std::move(s);  // t's old member b is released
  EXPECT_EQ(getweakrefcount(b), 0u);
  c.reset();
  EXPECT_TRUE(t.empty());
}

}  // namespace
