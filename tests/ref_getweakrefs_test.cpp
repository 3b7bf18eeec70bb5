// Tests for getweakrefcount and getweakrefs: canonical refs are shared and counted as CPython
// 3.11 does (with proxies and refs with callbacks), getweakrefs lists them in CPython's order,
// and non-weakrefable or empty pointers count 0 / make getweakrefs throw type_error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "support/multiple_bases.hpp"
#include "support/tracked.hpp"
#include "support/type_error_message.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/proxy.hpp"
#include "weakref/ref.hpp"

namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using weakref::getweakrefcount;
using weakref::getweakrefs;
using weakref::ref;

using multiple_bases::derived;

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

}  // namespace
