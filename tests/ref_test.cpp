// Tests for weakref::ref: construction, lock, equality and hashing, copies, canonical sharing,
// getweakrefcount and getweakrefs (CPython's numbers and order).
#include "weakref/ref.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "support/tracked.hpp"
#include "weakref/proxy.hpp"

namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using weakref::getweakrefcount;
using weakref::getweakrefs;
using weakref::ref;

struct base_a {
  virtual ~base_a() = default;
  int a = 1;
};
struct base_b {
  virtual ~base_b() = default;
  int b = 2;
};
// base_b sits at a non-zero offset, so converting pointers must adjust them.
struct derived : base_a, base_b {
  explicit derived(int v = 0) : value(v) {}
  int value;
};

// The what() of the type_error `f` throws, or a marker if it throws none.
template <class F>
std::string type_error_message(F&& f) {
  try {
    f();
  } catch (const weakref::type_error& e) {
    return e.what();
  }
  return "<no type_error>";
}

TEST(ref, default_constructed_ref_is_empty) {
  ref<derived> r;
  EXPECT_EQ(r.lock(), nullptr);
  EXPECT_EQ(r(), nullptr);
  EXPECT_FALSE(r.alive());
  EXPECT_FALSE(r.has_callback());
  EXPECT_EQ(r, ref<derived>());
  EXPECT_EQ(std::hash<ref<derived>>()(r), std::hash<ref<derived>>()(ref<derived>()));
  EXPECT_TRUE(noexcept(ref<derived>()));
}

TEST(ref, locks_to_the_live_object_without_owning_it) {
  auto obj = weakref::make_shared<derived>(7);
  ref<derived> r(obj);
  EXPECT_EQ(obj.use_count(), 1);
  EXPECT_TRUE(r.alive());
  EXPECT_FALSE(r.has_callback());
  auto locked = r.lock();
  EXPECT_EQ(locked, obj);
  EXPECT_EQ(obj.use_count(), 2);
  EXPECT_EQ(r(), obj);
  EXPECT_EQ(r()->value, 7);
}

TEST(ref, answers_nullptr_once_the_last_owner_is_gone) {
  auto obj = weakref::make_shared<derived>(7);
  auto second = obj;
  ref<derived> r(obj);
  obj.reset();
  EXPECT_TRUE(r.alive());
  EXPECT_EQ(r.lock(), second);
  second.reset();
  EXPECT_FALSE(r.alive());
  EXPECT_EQ(r.lock(), nullptr);
  EXPECT_EQ(r(), nullptr);
}

TEST(ref, base_class_shared_ptr_refers_to_the_same_object) {
  auto obj = weakref::make_shared<derived>(3);
  std::shared_ptr<base_b> as_base = obj;
  ref<base_b> rb(as_base);
  ref<derived> rd(obj);
  EXPECT_EQ(rb.lock().get(), static_cast<base_b*>(obj.get()));
  EXPECT_EQ(rb, ref<base_b>(rd));
  EXPECT_EQ(getweakrefcount(obj), 1u);  // both share the one canonical ref
  EXPECT_EQ(getweakrefcount(as_base), 1u);
  as_base.reset();
  obj.reset();
  EXPECT_EQ(rb.lock(), nullptr);
}

TEST(ref, aliasing_shared_ptr_refers_to_the_owner) {
  auto obj = weakref::make_shared<derived>(5);
  std::shared_ptr<int> alias(obj, &obj->value);
  ref<int> ri(alias);
  EXPECT_EQ(ri.lock().get(), &obj->value);
  EXPECT_EQ(*ri(), 5);
  EXPECT_EQ(ri.owner_hash(), ref<derived>(obj).owner_hash());
  EXPECT_EQ(getweakrefcount(obj), 1u);
  alias.reset();
  EXPECT_TRUE(ri.alive());
  obj.reset();
  EXPECT_FALSE(ri.alive());
  EXPECT_EQ(ri.lock(), nullptr);
}

TEST(ref, converting_ref_shares_the_weak_reference_object) {
  event_log log;
  auto obj = weakref::make_shared<derived>(1);
  ref<base_b> rb;
  {
    ref<derived> rd(obj, [&log] { log.add("cb"); });
    rb = rd;
    EXPECT_EQ(getweakrefcount(obj), 1u);
  }
  EXPECT_TRUE(rb.has_callback());  // the copy keeps the callback registered
  EXPECT_EQ(rb.lock().get(), static_cast<base_b*>(obj.get()));
  ref<base_a> ra = ref<derived>(obj);
  EXPECT_EQ(ra.lock().get(), static_cast<base_a*>(obj.get()));
  EXPECT_EQ(getweakrefcount(obj), 2u);
  EXPECT_EQ(ref<base_b>(ref<derived>()), ref<base_b>());
  obj.reset();
  EXPECT_THAT(log.events, ElementsAre("cb"));
  EXPECT_FALSE(rb.alive());
}

TEST(ref, throws_type_error_for_objects_not_made_by_weakref) {
  auto plain = std::make_shared<derived>();
  EXPECT_THAT(type_error_message([&] { ref<derived> r(plain); }),
              HasSubstr("was not created by weakref::make_shared"));
  bool called = false;
  EXPECT_THAT(type_error_message([&] { ref<derived> r(plain, [&] { called = true; }); }),
              HasSubstr("was not created by weakref::make_shared"));
  EXPECT_THROW(ref<derived>{plain}, std::invalid_argument);
  plain.reset();
  EXPECT_FALSE(called);
}

TEST(ref, throws_type_error_for_empty_shared_ptr) {
  std::shared_ptr<derived> empty;
  EXPECT_THAT(type_error_message([&] { ref<derived> r(empty); }), HasSubstr("is empty"));
  EXPECT_THAT(type_error_message([&] { ref<derived> r(empty, [] {}); }), HasSubstr("is empty"));
}

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

TEST(ref, is_at_most_two_pointers) {
  EXPECT_LE(sizeof(ref<derived>), 16u);
  EXPECT_LE(sizeof(ref<int>), 16u);
}

TEST(ref, copies_share_the_weak_reference_object) {
  auto obj = weakref::make_shared<derived>();
  ref<derived> r1(obj, [] {});
  ref<derived> copy = r1;
  EXPECT_EQ(getweakrefcount(obj), 1u);
  EXPECT_TRUE(copy.has_callback());
  ref<derived> r2(obj, [] {});
  EXPECT_EQ(getweakrefcount(obj), 2u);
  r2 = copy;  // drops r2's only handle: its weak reference object goes
  EXPECT_EQ(getweakrefcount(obj), 1u);
  auto& self = r2;
  r2 = self;
  EXPECT_EQ(getweakrefcount(obj), 1u);
  EXPECT_EQ(r2.lock(), obj);
}

TEST(ref, moves_leave_the_source_empty_and_keep_the_callback) {
  int calls = 0;
  auto obj = weakref::make_shared<derived>();
  ref<derived> source(obj, [&calls] { ++calls; });
  ref<derived> moved(std::move(source));
  EXPECT_EQ(source, ref<derived>());  // NOLINT(bugprone-use-after-move): like std::weak_ptr
  EXPECT_FALSE(source.alive());       // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(source.lock(), nullptr);  // NOLINT(bugprone-use-after-move)
  ref<derived> assigned;
  assigned = std::move(moved);
  EXPECT_EQ(moved, ref<derived>());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(getweakrefcount(obj), 1u);
  EXPECT_TRUE(assigned.has_callback());
  obj.reset();
  EXPECT_EQ(calls, 1);
}

TEST(ref, swap_exchanges_referents) {
  auto a = weakref::make_shared<derived>(1);
  auto b = weakref::make_shared<derived>(2);
  ref<derived> ra(a);
  ref<derived> rb(b, [] {});
  ra.swap(rb);
  EXPECT_EQ(ra.lock(), b);
  EXPECT_TRUE(ra.has_callback());
  EXPECT_EQ(rb.lock(), a);
  EXPECT_FALSE(rb.has_callback());
  ref<derived> empty;
  std::swap(empty, rb);
  EXPECT_EQ(empty.lock(), a);
  EXPECT_EQ(rb, ref<derived>());
  EXPECT_EQ(getweakrefcount(a), 1u);
  EXPECT_EQ(getweakrefcount(b), 1u);
}

// CPython 3.11: r1 = ref(o); r2 = ref(o) -> 1; + proxy(o) -> 2; + two refs with callbacks -> 4;
// del rc1 -> 3; del r1 -> 3 (r2 is the same object); del r2 -> 2; del p -> 1; del rc2 -> 0.
TEST(ref, canonical_refs_are_shared_and_counted_as_cpython_does) {
  auto obj = weakref::make_shared<derived>();
  auto r1 = std::make_unique<ref<derived>>(obj);
  auto r2 = std::make_unique<ref<derived>>(obj);
  EXPECT_EQ(getweakrefcount(obj), 1u);
  auto p = std::make_unique<weakref::proxy<derived>>(obj);
  EXPECT_EQ(getweakrefcount(obj), 2u);
  auto rc1 = std::make_unique<ref<derived>>(obj, [] {});
  auto rc2 = std::make_unique<ref<derived>>(obj, [] {});
  EXPECT_EQ(getweakrefcount(obj), 4u);
  rc1.reset();
  EXPECT_EQ(getweakrefcount(obj), 3u);
  r1.reset();
  EXPECT_EQ(getweakrefcount(obj), 3u);
  r2.reset();
  EXPECT_EQ(getweakrefcount(obj), 2u);
  p.reset();
  EXPECT_EQ(getweakrefcount(obj), 1u);
  rc2.reset();
  EXPECT_EQ(getweakrefcount(obj), 0u);
  ref<derived> again(obj);  // a new canonical ref
  EXPECT_EQ(getweakrefcount(obj), 1u);
}

TEST(ref, getweakrefcount_is_zero_for_non_weakrefable_and_empty_pointers) {
  EXPECT_EQ(getweakrefcount(std::make_shared<derived>()), 0u);
  EXPECT_EQ(getweakrefcount(std::shared_ptr<derived>()), 0u);
  EXPECT_EQ(getweakrefcount(weakref::make_shared<derived>()), 0u);
  EXPECT_TRUE(noexcept(getweakrefcount(std::shared_ptr<derived>())));
}

// CPython 3.11: pc = proxy(o, cb); p = proxy(o); ra = ref(o, cb); r = ref(o)
// -> getweakrefs(o) == [r, p, ra, pc].
TEST(ref, getweakrefs_lists_canonical_ref_canonical_proxy_then_others_newest_first) {
  event_log log;
  auto obj = weakref::make_shared<derived>();
  std::vector<ref<derived>> refs;
  {
    weakref::proxy<derived> pc(obj, [&log] { log.add("pc"); });
    weakref::proxy<derived> p(obj);
    ref<derived> ra(obj, [&log] { log.add("ra"); });
    ref<derived> r(obj);
    refs = getweakrefs(obj);
  }
  ASSERT_EQ(refs.size(), 4u);
  EXPECT_EQ(getweakrefcount(obj), 4u);  // the returned refs keep every object alive
  std::vector<bool> callbacks;
  for (auto& r : refs) {
    callbacks.push_back(r.has_callback());
    EXPECT_EQ(r.lock(), obj);
  }
  EXPECT_THAT(callbacks, ElementsAre(false, false, true, true));
  refs[0] = {};  // if it held the canonical ref, ref(obj) must now create a new one
  ref<derived> new_ref(obj);
  EXPECT_EQ(getweakrefcount(obj), 4u);
  refs[1] = {};  // likewise for the canonical proxy
  weakref::proxy<derived> new_proxy(obj);
  EXPECT_EQ(getweakrefcount(obj), 4u);
  refs[2] = {};  // ra: only pc's callback is left
  EXPECT_EQ(getweakrefcount(obj), 3u);
  obj.reset();
  EXPECT_THAT(log.events, ElementsAre("pc"));
}

TEST(ref, getweakrefs_is_empty_without_weak_references) {
  auto obj = weakref::make_shared<derived>();
  EXPECT_TRUE(getweakrefs(obj).empty());
  { ref<derived> r(obj); }
  EXPECT_TRUE(getweakrefs(obj).empty());
}

TEST(ref, getweakrefs_throws_type_error_for_non_weakrefable_and_empty_pointers) {
  EXPECT_THAT(type_error_message([] { getweakrefs(std::make_shared<derived>()); }),
              HasSubstr("was not created by weakref::make_shared"));
  EXPECT_THAT(type_error_message([] { getweakrefs(std::shared_ptr<derived>()); }),
              HasSubstr("is empty"));
}

struct self_aware : tracked, std::enable_shared_from_this<self_aware> {
  using tracked::tracked;
  ref<self_aware> self_ref() { return ref<self_aware>(shared_from_this()); }
  ref<self_aware> watch_self() {
    return ref<self_aware>(shared_from_this(), [this] { log().add("cb " + name()); });
  }
};

TEST(ref, works_with_enable_shared_from_this) {
  event_log log;
  auto obj = weakref::make_shared<self_aware>(log, "s");
  auto r = obj->self_ref();
  auto watcher = obj->watch_self();
  EXPECT_EQ(obj.use_count(), 1);
  EXPECT_EQ(r, ref<self_aware>(obj));
  EXPECT_EQ(r.lock(), obj);
  EXPECT_EQ(obj->weak_from_this().lock(), obj);
  EXPECT_TRUE(weakref::is_weakrefable(obj->shared_from_this()));
  EXPECT_EQ(getweakrefcount(obj), 2u);
  obj.reset();
  EXPECT_FALSE(r.alive());
  EXPECT_THAT(log.events, ElementsAre("cb s", "~s"));
}

}  // namespace
