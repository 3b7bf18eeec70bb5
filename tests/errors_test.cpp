// Tests for weakref/errors.hpp: the exception types, their bases and messages, and that every
// facility throws type_error for pointers it cannot weakly reference.
#include "weakref/errors.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "weakref/finalize.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/proxy.hpp"
#include "weakref/ref.hpp"
#include "weakref/weak_method.hpp"

namespace {

struct widget {
  int value = 7;
  int get() const { return value; }
  void set(int v) { value = v; }
};

static_assert(std::is_base_of_v<std::invalid_argument, weakref::type_error>);
static_assert(std::is_base_of_v<std::logic_error, weakref::type_error>);
static_assert(std::is_base_of_v<std::runtime_error, weakref::reference_error>);
static_assert(!std::is_base_of_v<std::logic_error, weakref::reference_error>);
static_assert(!std::is_base_of_v<std::runtime_error, weakref::type_error>);

// Calls `f`, which must throw type_error, and returns the message. Fails the test otherwise.
std::string type_error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const weakref::type_error& e) {
    return e.what();
  } catch (...) {
    ADD_FAILURE() << "threw something other than weakref::type_error";
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

// Every facility, with the name its messages must mention, given one shared_ptr.
struct facility {
  const char* name;
  std::function<void(const std::shared_ptr<widget>&)> use;
};

std::vector<facility> facilities() {
  return {
      {"weakref::ref", [](const auto& p) { weakref::ref<widget> r(p); }},
      {"weakref::ref", [](const auto& p) { weakref::ref<widget> r(p, [] {}); }},
      {"weakref::proxy", [](const auto& p) { weakref::proxy<widget> x(p); }},
      {"weakref::proxy", [](const auto& p) { weakref::proxy<widget> x(p, [] {}); }},
      {"weakref::weak_method", [](const auto& p) { weakref::weak_method m(p, &widget::get); }},
      {"weakref::weak_method", [](const auto& p) { weakref::weak_method m(p, &widget::set); }},
      {"weakref::weak_method",
       [](const auto& p) { weakref::weak_method m(p, &widget::get, [] {}); }},
      {"weakref::finalize", [](const auto& p) { weakref::finalize f(p, [] {}); }},
      {"weakref::getweakrefs", [](const auto& p) { (void)weakref::getweakrefs(p); }},
  };
}

TEST(errors, reference_error_has_cpythons_message) {
  weakref::reference_error e;
  EXPECT_STREQ(e.what(), "weakly-referenced object no longer exists");
  const std::runtime_error& base = e;
  EXPECT_STREQ(base.what(), "weakly-referenced object no longer exists");
}

TEST(errors, type_error_keeps_its_message) {
  weakref::type_error e("custom");
  EXPECT_STREQ(e.what(), "custom");
}

TEST(errors, dead_proxy_throws_reference_error_catchable_as_runtime_error) {
  auto obj = weakref::make_shared<widget>();
  weakref::proxy<widget> p(obj);
  EXPECT_EQ(p->get(), 7);
  obj.reset();
  std::string message;
  try {
    (void)p->get();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(dynamic_cast<const weakref::reference_error*>(&e), nullptr);
    message = e.what();
  }
  EXPECT_EQ(message, "weakly-referenced object no longer exists");
}

TEST(errors, every_facility_throws_type_error_for_std_make_shared) {
  auto obj = std::make_shared<widget>();
  for (const auto& f : facilities()) {
    SCOPED_TRACE(f.name);
    auto message = type_error_message([&] { f.use(obj); });
    EXPECT_NE(message.find(f.name), std::string::npos) << message;
    EXPECT_NE(message.find("was not created by weakref::make_shared"), std::string::npos)
        << message;
  }
  EXPECT_EQ(obj.use_count(), 1);  // nothing kept a strong reference
}

TEST(errors, every_facility_throws_type_error_for_an_empty_shared_ptr) {
  std::shared_ptr<widget> empty;
  for (const auto& f : facilities()) {
    SCOPED_TRACE(f.name);
    auto message = type_error_message([&] { f.use(empty); });
    EXPECT_NE(message.find(f.name), std::string::npos) << message;
    EXPECT_NE(message.find("is empty"), std::string::npos) << message;
    EXPECT_NE(message.find("weakref::make_shared"), std::string::npos) << message;
  }
}

TEST(errors, new_owned_and_aliasing_std_pointers_are_rejected_too) {
  std::shared_ptr<widget> owned(new widget);
  auto message = type_error_message([&] { weakref::ref<widget> r(owned); });
  EXPECT_NE(message.find("was not created by weakref::make_shared"), std::string::npos);

  auto std_obj = std::make_shared<widget>();
  std::shared_ptr<int> member(std_obj, &std_obj->value);
  message = type_error_message([&] { weakref::ref<int> r(member); });
  EXPECT_NE(message.find("was not created by weakref::make_shared"), std::string::npos);
}

TEST(errors, type_error_is_catchable_as_its_std_bases) {
  auto obj = std::make_shared<widget>();
  int caught = 0;
  try {
    weakref::ref<widget> r(obj);
  } catch (const std::invalid_argument&) {
    ++caught;
  }
  try {
    weakref::proxy<widget> p(obj);
  } catch (const std::logic_error&) {
    ++caught;
  }
  try {
    weakref::finalize f(obj, [] {});
  } catch (const std::exception& e) {
    ++caught;
    EXPECT_NE(std::string(e.what()).find("weakref::finalize"), std::string::npos);
  }
  EXPECT_EQ(caught, 3);
}

TEST(errors, a_rejected_finalize_never_runs_and_a_rejected_callback_never_fires) {
  int finalized = 0;
  int called = 0;
  auto obj = std::make_shared<widget>();
  EXPECT_THROW(weakref::finalize(obj, [&] { ++finalized; }), weakref::type_error);
  EXPECT_THROW(weakref::ref<widget>(obj, [&] { ++called; }), weakref::type_error);
  obj.reset();
  EXPECT_EQ(finalized, 0);
  EXPECT_EQ(called, 0);
}

TEST(errors, getweakrefcount_does_not_throw_for_non_weakrefable_pointers) {
  static_assert(noexcept(weakref::getweakrefcount(std::shared_ptr<widget>())));
  EXPECT_EQ(weakref::getweakrefcount(std::make_shared<widget>()), 0u);
  EXPECT_EQ(weakref::getweakrefcount(std::shared_ptr<widget>()), 0u);
}

TEST(errors, weakrefable_pointers_are_accepted_by_every_facility) {
  auto obj = weakref::make_shared<widget>();
  for (const auto& f : facilities()) {
    SCOPED_TRACE(f.name);
    EXPECT_NO_THROW(f.use(obj));
  }
}

}  // namespace
