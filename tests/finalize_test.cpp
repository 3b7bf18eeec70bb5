// Tests for weakref::finalize: runs func(args...) exactly once (at death or when called), detach
// (also too late once the object is dying), alive, atexit, arguments stored by value and released
// once it is over, handle semantics, getweakrefcount, and non-weakrefable pointers.
// Also: finalize_order_test.cpp, finalize_threads_test.cpp, finalize_at_exit_test.cpp.
#include "weakref/finalize.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/finalize_helpers.hpp"
#include "support/make_shared_helpers.hpp"
#include "support/type_error_message.hpp"
#include "support/unraisable_log.hpp"
#include "weakref/errors.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"

namespace {
using finalize_helpers::strings;
using finalize_helpers::tracked;

struct copy_counter {
  copy_counter(int* copies, int* moves) : copies(copies), moves(moves) {}
  copy_counter(const copy_counter& other) : copies(other.copies), moves(other.moves) { ++*copies; }
  copy_counter(copy_counter&& other) noexcept : copies(other.copies), moves(other.moves) {
    ++*moves;
  }
  copy_counter& operator=(const copy_counter&) = delete;
  int* copies;
  int* moves;
};

}  // namespace

TEST(finalize, runs_once_at_death_with_its_arguments_before_the_destructor) {
  strings log;
  auto obj = weakref::make_shared<tracked>(&log);
  weakref::finalize f(
      obj, [&log](const std::string& s, int n) { log.push_back(s + std::to_string(n)); },
      std::string("x"), 7);
  EXPECT_TRUE(f.alive());
  EXPECT_TRUE(log.empty());
  obj.reset();
  EXPECT_EQ(log, (strings{"x7", "destructor"}));
  EXPECT_FALSE(f.alive());
  EXPECT_FALSE(f());
  EXPECT_FALSE(f.detach());
  EXPECT_EQ(log.size(), 2u);
}

TEST(finalize, call_runs_it_now_then_never_again) {  // CPython test_finalize, part 1
  auto a = weakref::make_shared<int>(0);
  std::vector<int> res;
  auto add = [&res](int x, int y, int z) { res.push_back(x + y + z); };
  weakref::finalize f(a, add, 67, 43, 89);
  EXPECT_TRUE(f.alive());
  EXPECT_TRUE(f());
  EXPECT_FALSE(f());
  EXPECT_FALSE(f());
  EXPECT_FALSE(f.detach());
  EXPECT_FALSE(f.alive());
  EXPECT_EQ(res, std::vector<int>{199});
  a.reset();
  EXPECT_EQ(res, std::vector<int>{199});
}

TEST(finalize, detach_cancels_it) {  // CPython test_finalize, part 2
  auto a = weakref::make_shared<int>(0);
  std::vector<int> res;
  weakref::finalize f(
      a, [&res](int x, int y, int z) { res.push_back(x + y + z); }, 67, 43, 89);
  EXPECT_TRUE(f.detach());
  EXPECT_FALSE(f());
  EXPECT_FALSE(f());
  EXPECT_FALSE(f.detach());
  EXPECT_FALSE(f.alive());
  a.reset();
  EXPECT_TRUE(res.empty());
}

// CPython: detach() needs the object alive; from an earlier callback of the dying object it
// returns None and the finalizer still runs (found by tools/difftest).
TEST(finalize, detach_while_its_object_is_dying_is_too_late) {
  auto a = weakref::make_shared<int>(0);
  strings log;
  weakref::finalize f(a, [&log] { log.push_back("finalizer"); });
  bool detached = true, alive_in_callback = false;
  weakref::ref<int> r(a, [&] {  // newer, so it runs first
    alive_in_callback = f.alive();
    detached = f.detach();
    log.push_back("callback");
  });
  a.reset();
  EXPECT_TRUE(alive_in_callback);
  EXPECT_FALSE(detached);
  EXPECT_EQ(log, (strings{"callback", "finalizer"}));
  EXPECT_FALSE(f.alive());
}

TEST(finalize, arguments_and_function_are_stored_by_value) {
  int copies = 0;
  int moves = 0;
  auto obj = weakref::make_shared<int>(0);
  int seen = 0;
  copy_counter lvalue(&copies, &moves);
  weakref::finalize by_copy(
      obj, [&seen](const copy_counter&) { ++seen; }, lvalue);
  EXPECT_EQ(copies, 1);  // one copy into the finalizer, none when called
  EXPECT_EQ(moves, 0);
  weakref::finalize by_move(
      obj, [&seen](copy_counter&) { ++seen; }, copy_counter(&copies, &moves));
  EXPECT_EQ(copies, 1);
  EXPECT_EQ(moves, 1);

  std::string text = "before";
  std::string got;
  weakref::finalize with_string(
      obj, [&got](const std::string& s) { got = s; }, text);
  text = "after";

  struct adder {
    int* total;
    int amount;
    void operator()() const { *total += amount; }
  };
  int total = 0;
  adder add{&total, 1};
  weakref::finalize with_functor(obj, add);
  add.amount = 100;

  weakref::finalize move_only(
      obj, [&seen](std::unique_ptr<int>& p) { seen += *p; }, std::make_unique<int>(40));
  obj.reset();
  EXPECT_EQ(got, "before");
  EXPECT_EQ(total, 1);
  EXPECT_EQ(seen, 42);
  EXPECT_EQ(copies, 1);
  EXPECT_EQ(moves, 1);
}

TEST(finalize, function_and_arguments_are_released_once_it_is_over) {
  // CPython test_all_freed: kept while pending (even without handles), freed once over.
  for (const std::string how : {"death", "call", "detach"}) {
    auto obj = weakref::make_shared<int>(0);
    auto token = std::make_shared<int>(1);
    const std::weak_ptr<int> watch = token;
    weakref::finalize f(
        obj, [token](const std::shared_ptr<int>&) {}, token);
    token.reset();
    EXPECT_FALSE(watch.expired()) << how;
    if (how == "death") {
      f = weakref::finalize();  // no handle left: the registry keeps it
      EXPECT_FALSE(watch.expired());
      obj.reset();
    } else if (how == "call") {
      EXPECT_TRUE(f());
    } else {
      EXPECT_TRUE(f.detach());
    }
    EXPECT_TRUE(watch.expired()) << how;
  }
}

TEST(finalize, atexit_defaults_to_true_is_settable_and_false_once_dead) {
  auto obj = weakref::make_shared<int>(0);
  weakref::finalize f(obj, [] {});
  const weakref::finalize copy = f;
  EXPECT_TRUE(f.atexit());
  f.atexit(false);
  EXPECT_FALSE(f.atexit());
  EXPECT_FALSE(copy.atexit());  // one finalizer, two handles
  f.atexit(true);
  EXPECT_TRUE(copy.atexit());
  EXPECT_TRUE(f());
  EXPECT_FALSE(f.atexit());
  f.atexit(true);  // ignored once dead
  EXPECT_FALSE(f.atexit());

  weakref::finalize g(obj, [] {});
  obj.reset();
  EXPECT_FALSE(g.atexit());
  g.atexit(true);
  EXPECT_FALSE(g.atexit());
}

TEST(finalize, default_constructed_is_dead) {
  weakref::finalize f;
  EXPECT_FALSE(f.alive());
  EXPECT_FALSE(f.detach());
  EXPECT_FALSE(f());
  EXPECT_FALSE(f.atexit());
  f.atexit(true);
  EXPECT_FALSE(f.atexit());
}

TEST(finalize, dropping_every_handle_does_not_cancel_it) {
  auto obj = weakref::make_shared<int>(0);
  strings log;
  {
    weakref::finalize f(obj, [&log] { log.push_back("scoped"); });
  }
  static_cast<void>(weakref::finalize(obj, [&log] { log.push_back("temporary"); }));
  EXPECT_TRUE(log.empty());
  obj.reset();
  EXPECT_EQ(log, (strings{"temporary", "scoped"}));
}

TEST(finalize, copies_are_handles_to_one_finalizer) {
  auto obj = weakref::make_shared<int>(0);
  int runs = 0;
  weakref::finalize f(obj, [&runs] { ++runs; });
  weakref::finalize copy = f;
  weakref::finalize assigned;
  assigned = copy;
  EXPECT_EQ(weakref::getweakrefcount(obj), 1u);
  EXPECT_TRUE(copy());
  EXPECT_FALSE(f.alive());
  EXPECT_FALSE(assigned.alive());
  EXPECT_FALSE(f());
  EXPECT_FALSE(assigned.detach());
  obj.reset();
  EXPECT_EQ(runs, 1);

  auto other = weakref::make_shared<int>(0);  // identical arguments: independent finalizers
  weakref::finalize g1(other, [&runs] { ++runs; });
  weakref::finalize g2(other, [&runs] { ++runs; });
  EXPECT_EQ(weakref::getweakrefcount(other), 2u);
  EXPECT_TRUE(g1());
  EXPECT_TRUE(g2.alive());
  other.reset();
  EXPECT_EQ(runs, 3);
}

TEST(finalize, counts_in_getweakrefcount_until_it_is_over) {
  auto a = weakref::make_shared<int>(0);
  const weakref::ref<int> r(a);
  weakref::finalize f(a, [] {});
  weakref::finalize g(a, [] {});
  EXPECT_EQ(weakref::getweakrefcount(a), 3u);  // CPython: 3, detach -> 2, call -> 1
  EXPECT_TRUE(g.detach());
  EXPECT_EQ(weakref::getweakrefcount(a), 2u);
  EXPECT_TRUE(f());
  EXPECT_EQ(weakref::getweakrefcount(a), 1u);
}

TEST(finalize, rejects_pointers_not_made_by_weakref_make_shared) {
  int runs = 0;
  auto count = [&runs] { ++runs; };
  auto plain = std::make_shared<int>(0);
  const std::string not_made = type_error_message([&] { weakref::finalize f(plain, count); });
  EXPECT_NE(not_made.find("was not created by weakref::make_shared"), std::string::npos)
      << not_made;
  EXPECT_NE(not_made.find("finalize"), std::string::npos) << not_made;
  const std::string empty =
      type_error_message([&] { weakref::finalize f(std::shared_ptr<int>(), count); });
  EXPECT_NE(empty.find("is empty"), std::string::npos) << empty;
  plain.reset();
  EXPECT_EQ(runs, 0);
}

// CPython's finalize needs a callable (finalize(o, None) fails when it runs); an empty function
// could never run, so it is rejected at once, before anything is registered.

namespace {

TEST(finalize, rejects_an_empty_function) {
  unraisable_log unraisable;
  auto obj = weakref::make_shared<int>(0);
  const std::string empty_function =
      type_error_message([&] { weakref::finalize f(obj, std::function<void()>()); });
  EXPECT_NE(empty_function.find("function is empty"), std::string::npos) << empty_function;
  void (*null_pointer)(int) = nullptr;
  const std::string null_function =
      type_error_message([&] { weakref::finalize f(obj, null_pointer, 1); });
  EXPECT_NE(null_function.find("function is empty"), std::string::npos) << null_function;
  EXPECT_EQ(weakref::getweakrefcount(obj), 0u);
  obj.reset();
  EXPECT_TRUE(unraisable.entries.empty());
}

// Once a finalizer is over, nothing of it keeps its object's block: the block (control block
// and object, one allocation) is freed when the object dies, whether the finalizer ran at the
// death, was called or detached before, and whether a handle to it is kept.
TEST(finalize, a_finished_finalizer_does_not_keep_its_objects_block) {
  using make_shared_helpers::alloc_stats;
  using make_shared_helpers::counting_allocator;
  struct big {
    char bytes[1 << 16];
  };
  for (int how = 0; how < 4; ++how) {
    alloc_stats stats;
    auto obj = weakref::allocate_shared<big>(counting_allocator<big>(&stats));
    int runs = 0;
    std::optional<weakref::finalize> f;
    f.emplace(obj, [&runs] { ++runs; });
    if (how == 1) {
      EXPECT_TRUE((*f)());
    }
    if (how == 2) {
      EXPECT_TRUE(f->detach());
    }
    if (how == 3) f.reset();  // only the registry has it
    obj.reset();
    EXPECT_EQ(runs, how == 2 ? 0 : 1) << how;
    EXPECT_EQ(stats.allocations, 1u) << how;
    EXPECT_EQ(stats.deallocations, 1u) << how;  // the registry kept it until its next sweep
  }
}

// The function and its arguments live in the finalizer's one block, aligned as their types
// require, also beyond operator new's default alignment.
TEST(finalize, an_over_aligned_function_is_stored_aligned) {
  struct alignas(64) aligned_function {
    std::uintptr_t* address;
    void operator()() { *address = reinterpret_cast<std::uintptr_t>(this); }
  };
  std::uintptr_t address = 1;
  auto obj = weakref::make_shared<int>(0);
  weakref::finalize f(obj, aligned_function{&address});
  obj.reset();
  EXPECT_NE(address, 1u);
  EXPECT_EQ(address % 64, 0u);
}

// A function that creates finalizers makes the registry sweep while it runs: the running
// finalizer is over (claimed) and held by nothing but the registry and its node, which is still
// calling it; a sweep must leave its block alone until the node is gone (AddressSanitizer:
// heap-use-after-free otherwise).
TEST(finalize, a_function_may_create_finalizers_while_it_runs_at_death) {
  auto obj = weakref::make_shared<int>(0);
  auto other = weakref::make_shared<int>(1);
  int inner_runs = 0;
  static_cast<void>(weakref::finalize(obj, [&] {
    for (int i = 0; i < 100; ++i) {
      static_cast<void>(weakref::finalize(other, [&inner_runs] { ++inner_runs; }));
    }
  }));
  obj.reset();
  EXPECT_EQ(weakref::getweakrefcount(other), 100u);
  other.reset();
  EXPECT_EQ(inner_runs, 100);
}

// getweakrefs lists a finalizer as a ref<T> to its node, which may outlive the finalizer and
// its object: the death runs it (or finds it over) and clears the ref's callback, as CPython
// does; the ref frees the node when it goes (AddressSanitizer: no leak, no double free).
TEST(finalize, a_ref_from_getweakrefs_outlives_its_finalizer) {
  for (const bool called_first : {false, true}) {
    auto obj = weakref::make_shared<int>(0);
    int runs = 0;
    weakref::finalize f(obj, [&runs] { ++runs; });
    auto refs = weakref::getweakrefs(obj);
    ASSERT_EQ(refs.size(), 1u);
    EXPECT_TRUE(refs[0].has_callback());
    if (called_first) {
      EXPECT_TRUE(f());
    }
    f = weakref::finalize();
    obj.reset();
    EXPECT_EQ(runs, 1) << called_first;
    EXPECT_EQ(refs[0](), nullptr);
    EXPECT_FALSE(refs[0].has_callback());
  }
}

}  // namespace
