// Tests for weakref::ref equality, hashing and order: == is owner identity, before and after
// death and across element types; std::hash agrees with it, is stable across death, and makes
// refs usable as unordered_set keys; owner_before orders them for std::set and std::map.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <unordered_set>

#include "support/multiple_bases.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/proxy.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_method.hpp"

namespace {

using weakref::ref;

using multiple_bases::base_b;
using multiple_bases::derived;

TEST(ref, equality_is_owner_identity_before_and_after_death) {
  auto a = weakref::make_shared<derived>(42);
  auto b = weakref::make_shared<derived>(42);  // an equal value, another object
  ref<derived> ra(a);
  ref<derived> ra_cb(a, [] {});
  ref<derived> rb(b);
  EXPECT_EQ(ra, ra_cb);
  EXPECT_NE(ra, rb);
  EXPECT_NE(ra, ref<derived>());
  EXPECT_EQ(ref<base_b>(ra), ref<base_b>(ra_cb));
  a.reset();
  EXPECT_EQ(ra, ra_cb);  // dead refs to one object stay equal (CPython: identity)
  EXPECT_NE(ra, rb);
  EXPECT_NE(ra, ref<derived>());
}

TEST(ref, equality_works_across_element_types) {
  auto obj = weakref::make_shared<derived>(1);
  auto other = weakref::make_shared<derived>(1);
  ref<derived> rd(obj);
  ref<base_b> rb{std::shared_ptr<base_b>(obj)};
  ref<int> ri{std::shared_ptr<int>(obj, &obj->value)};
  EXPECT_TRUE(rb == rd);
  EXPECT_TRUE(ri == rd);
  EXPECT_FALSE(rb == ref<derived>(other));
  EXPECT_TRUE(ref<int>() == ref<derived>());
  obj.reset();
  EXPECT_TRUE(rb == rd);
  EXPECT_TRUE(ref<base_b>(rd) == rd);  // converted from a dead ref: still the same owner
  EXPECT_EQ(ref<base_b>(rd).lock(), nullptr);
}

TEST(ref, hash_agrees_with_equality_and_is_stable_across_death) {
  std::hash<ref<derived>> hash;
  auto obj = weakref::make_shared<derived>();
  ref<derived> r(obj);
  ref<derived> r_cb(obj, [] {});
  const auto before = hash(r);
  EXPECT_EQ(hash(r_cb), before);
  EXPECT_EQ(r.owner_hash(), before);
  obj.reset();
  EXPECT_EQ(hash(r), before);
  EXPECT_EQ(hash(r_cb), before);
}

TEST(ref, is_usable_as_unordered_set_key_before_and_after_death) {
  auto a = weakref::make_shared<derived>(1);
  auto b = weakref::make_shared<derived>(1);
  ref<derived> ra(a);
  std::unordered_set<ref<derived>> set{ra, ref<derived>(a, [] {}), ref<derived>(b), ra};
  EXPECT_EQ(set.size(), 2u);
  EXPECT_TRUE(set.contains(ref<derived>(b)));
  a.reset();
  EXPECT_TRUE(set.contains(ra));
  EXPECT_EQ(set.erase(ra), 1u);
  EXPECT_EQ(set.size(), 1u);
  EXPECT_EQ(set.begin()->lock(), b);
}

// owner_before orders owners as std::weak_ptr's does: a strict weak order whose equivalence
// is ==, unchanged by a death, across element types, empty refs first; std::owner_less<ref<T>>
// makes it the comparator of std::set and std::map.
TEST(ref, owner_before_orders_owners_consistently_with_equality) {
  auto a = weakref::make_shared<derived>(1);
  auto b = weakref::make_shared<derived>(2);
  ref<derived> ra(a), ra_cb(a, [] {}), rb(b), empty;
  EXPECT_FALSE(ra.owner_before(ra_cb));
  EXPECT_FALSE(ra_cb.owner_before(ra));
  EXPECT_NE(ra.owner_before(rb), rb.owner_before(ra));
  EXPECT_TRUE(empty.owner_before(ra));
  EXPECT_FALSE(ra.owner_before(empty));
  EXPECT_FALSE(empty.owner_before(ref<derived>()));
  ref<base_b> rb_base(b);  // another element type, the same owner
  EXPECT_FALSE(rb.owner_before(rb_base));
  EXPECT_FALSE(rb_base.owner_before(rb));

  std::set<ref<derived>, std::owner_less<ref<derived>>> set{ra, ra_cb, rb};
  std::map<ref<derived>, int, std::owner_less<ref<derived>>> map{{ra, 1}, {rb, 2}};
  EXPECT_EQ(set.size(), 2u);
  bool a_first = ra.owner_before(rb);
  a.reset();  // the order does not change with a death
  EXPECT_EQ(ra.owner_before(rb), a_first);
  EXPECT_TRUE(set.contains(ra));
  EXPECT_EQ(map.at(ra), 1);
  EXPECT_EQ(map.find(rb_base)->second, 2);  // owner_less<ref<T>> is transparent
}

// same_ref is CPython's `is` between weakrefs: whether two handles share one weak reference
// object, which equality (the referent's identity) does not tell.
struct with_method : derived {
  using derived::derived;
  int get() const { return value; }
};

TEST(ref, same_ref_tells_whether_two_handles_share_one_weak_reference_object) {
  auto a = weakref::make_shared<with_method>(1);
  auto b = weakref::make_shared<with_method>(1);
  ref<with_method> r1(a);
  ref<with_method> r2(a);  // CPython: ref(o) is ref(o)
  ref<with_method> copy = r1;
  ref<with_method> cb1(a, [] {});
  ref<with_method> cb2(a, [] {});
  ref<base_b> converted(r1);
  weakref::proxy<with_method> p1(a);
  weakref::proxy<with_method> p2(a);
  weakref::proxy<with_method> pcb(a, [] {});
  weakref::weak_method m1(a, &with_method::get);
  weakref::weak_method m2(a, &with_method::get);
  auto m_copy = m1;
  EXPECT_TRUE(weakref::same_ref(r1, r2));
  EXPECT_TRUE(weakref::same_ref(r1, copy));
  EXPECT_TRUE(weakref::same_ref(converted, r2));  // across element types
  EXPECT_FALSE(weakref::same_ref(r1, cb1));
  EXPECT_TRUE(r1 == cb1);  // the same object, though
  EXPECT_FALSE(weakref::same_ref(cb1, cb2));
  EXPECT_TRUE(weakref::same_ref(cb1, cb1));
  EXPECT_FALSE(weakref::same_ref(r1, ref<with_method>(b)));
  EXPECT_TRUE(weakref::same_ref(p1, p2));
  EXPECT_FALSE(weakref::same_ref(p1, r1));  // the canonical proxy is not the canonical ref
  EXPECT_FALSE(weakref::same_ref(p1, pcb));
  EXPECT_FALSE(weakref::same_ref(m1, m2));  // each WeakMethod is its own
  EXPECT_TRUE(weakref::same_ref(m1, m_copy));
  EXPECT_FALSE(weakref::same_ref(ref<with_method>(), ref<with_method>()));  // empty: none to share
  EXPECT_FALSE(weakref::same_ref(r1, ref<with_method>()));
  auto all = weakref::getweakrefs(a);  // canonical ref, canonical proxy, then newest first
  ASSERT_EQ(all.size(), 7u);
  EXPECT_TRUE(weakref::same_ref(all[0], r1));
  EXPECT_TRUE(weakref::same_ref(all[1], p1));
  EXPECT_TRUE(weakref::same_ref(all[2], m2));
  EXPECT_TRUE(weakref::same_ref(all[3], m1));
  EXPECT_TRUE(weakref::same_ref(all[4], pcb));
  EXPECT_TRUE(weakref::same_ref(all[5], cb2));
  EXPECT_TRUE(weakref::same_ref(all[6], cb1));
  all.clear();
  a.reset();  // alive or dead makes no difference
  EXPECT_TRUE(weakref::same_ref(r1, r2));
  EXPECT_FALSE(weakref::same_ref(r1, cb1));
  static_assert(noexcept(weakref::same_ref(r1, p1)));
}

}  // namespace
