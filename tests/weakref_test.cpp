// Tests for weakref/weakref.hpp, the umbrella header: it compiles on its own (it is the first
// include) and exposes every public name.
#include "weakref/weakref.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

struct counter {
  int n = 0;
  int add(int k) { return n += k; }
};

TEST(weakref, make_shared_and_is_weakrefable) {
  auto obj = weakref::make_shared<counter>();
  static_assert(std::is_same_v<decltype(obj), std::shared_ptr<counter>>);
  EXPECT_TRUE(weakref::is_weakrefable(obj));
  EXPECT_FALSE(weakref::is_weakrefable(std::make_shared<counter>()));
  auto other = weakref::allocate_shared<counter>(std::allocator<counter>());
  EXPECT_TRUE(weakref::is_weakrefable(other));
}

TEST(weakref, ref_getweakrefcount_and_getweakrefs) {
  auto obj = weakref::make_shared<counter>();
  weakref::ref<counter> r(obj);
  int called = 0;
  weakref::ref<counter> with_callback(obj, [&called] { ++called; });
  EXPECT_EQ(r.lock(), obj);
  EXPECT_EQ(weakref::getweakrefcount(obj), 2u);
  std::vector<weakref::ref<counter>> refs = weakref::getweakrefs(obj);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_FALSE(refs[0].has_callback());
  EXPECT_TRUE(refs[1].has_callback());
  obj.reset();
  EXPECT_EQ(r(), nullptr);
  EXPECT_EQ(called, 1);
}

TEST(weakref, proxy_and_reference_error) {
  auto obj = weakref::make_shared<counter>();
  weakref::proxy<counter> p(obj);
  EXPECT_EQ(p->add(2), 2);
  obj.reset();
  EXPECT_THROW(p->add(1), weakref::reference_error);
}

TEST(weakref, weak_method) {
  auto obj = weakref::make_shared<counter>();
  weakref::weak_method add(obj, &counter::add);
  EXPECT_EQ(add(3), std::optional<int>(3));
  obj.reset();
  EXPECT_EQ(add(3), std::nullopt);
}

TEST(weakref, finalize) {
  std::string log;
  auto obj = weakref::make_shared<counter>();
  weakref::finalize f(
      obj, [&log](const std::string& s) { log += s; }, std::string("done"));
  EXPECT_TRUE(f.alive());
  obj.reset();
  EXPECT_EQ(log, "done");
  EXPECT_FALSE(f.alive());
}

TEST(weakref, type_error) {
  EXPECT_THROW(weakref::ref<counter>(std::make_shared<counter>()), weakref::type_error);
  static_assert(std::is_base_of_v<std::invalid_argument, weakref::type_error>);
  static_assert(std::is_base_of_v<std::runtime_error, weakref::reference_error>);
}

TEST(weakref, set_unraisable_hook) {
  std::string where;
  weakref::unraisable_hook hook = [&where](const weakref::unraisable& u) { where = u.where; };
  EXPECT_FALSE(weakref::set_unraisable_hook(hook));
  {
    auto obj = weakref::make_shared<counter>();
    weakref::ref<counter> r(obj, [] { throw std::runtime_error("x"); });
    obj.reset();
  }
  EXPECT_TRUE(weakref::set_unraisable_hook({}));
  EXPECT_EQ(where, "weakref callback");
}

}  // namespace
