// Tests for weakref::ref: construction, lock, base-class, aliasing and converting refs,
// non-weakrefable pointers, size, copies, moves, swap and enable_shared_from_this.
// Also: ref_equality_test.cpp, ref_getweakrefs_test.cpp, ref_callback_test.cpp,
// ref_threads_test.cpp.
#include "weakref/ref.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "support/multiple_bases.hpp"
#include "support/tracked.hpp"
#include "support/type_error_message.hpp"

namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using weakref::getweakrefcount;
using weakref::ref;

using multiple_bases::base_a;
using multiple_bases::base_b;
using multiple_bases::derived;

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
