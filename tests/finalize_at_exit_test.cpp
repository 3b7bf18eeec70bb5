// Tests for weakref::finalize at normal exit (CPython's finalize._exitfunc): pending finalizers
// run newest first unless atexit(false), finalizers created at exit run too, exceptions go to the
// unraisable hook, and after the exit run none run any more. Each case runs in a death test
// (threadsafe style, so they work under TSan).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "weakref/finalize.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/unraisable.hpp"

namespace {

void say(const char* what) { std::fprintf(stderr, "%s\n", what); }

}  // namespace

// Exit-time behaviour (CPython's finalize._exitfunc). Each child registers its own handlers.
TEST(finalize_at_exit_DeathTest, pending_finalizers_run_newest_first_then_none_any_more) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static auto* keep = new std::vector<std::shared_ptr<int>>;
        static auto* skipped = new weakref::finalize;
        // Registered before the first finalize, so it runs after the finalizers' exit run.
        std::atexit(+[] {
          say((*skipped)() ? "late call ran" : "late call did nothing");
          keep->clear();  // the objects die now: too late, nothing runs
          say("late");
        });
        for (int i = 0; i < 4; ++i) keep->push_back(weakref::make_shared<int>(i));
        weakref::finalize f1((*keep)[0], say, "f1");
        weakref::finalize f2((*keep)[1], say, "f2");
        f2.atexit(false);  // skipped at exit
        *skipped = weakref::finalize((*keep)[1], say, "f2b");
        skipped->atexit(false);
        static_cast<void>(weakref::finalize((*keep)[2], say, "f3"));  // no handle kept
        weakref::finalize f4((*keep)[3], say, "f4");
        weakref::finalize f5((*keep)[3], say, "f5");
        f5();  // already run: not again at exit
        weakref::finalize f6((*keep)[3], say, "f6");
        f6.detach();
        auto dies = weakref::make_shared<int>(9);
        weakref::finalize f7(dies, say, "f7");
        dies.reset();  // ran at death: not again at exit
        say("exit");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "^f5\nf7\nexit\nf4\nf3\nf1\nlate call did nothing\nlate\n$");
}

TEST(finalize_at_exit_DeathTest, cpython_test_atexit_rescans_and_reports_exceptions) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static auto* cls = new std::shared_ptr<int>(weakref::make_shared<int>(0));
        weakref::finalize f1(*cls, say, "f1");
        weakref::finalize f2(*cls, say, "f2");
        weakref::finalize f3(*cls, [] {
          // A finalizer created by a finalizer at exit runs next.
          static_cast<void>(weakref::finalize(*cls, say, "g1"));
          say("f3 error");
          throw std::runtime_error("division by zero");
        });
        weakref::finalize f4(*cls, say, "f4");
        f2.atexit(false);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0),
      "^f4\nf3 error\nweakref: exception ignored in finalize at exit: division by zero\ng1\nf1\n$");
}

TEST(finalize_at_exit_DeathTest, exception_at_exit_goes_to_the_installed_hook) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        weakref::set_unraisable_hook([](const weakref::unraisable& u) {
          try {
            std::rethrow_exception(u.error);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "hook [%s] %s\n", std::string(u.where).c_str(), e.what());
          }
        });
        static auto* obj = new std::shared_ptr<int>(weakref::make_shared<int>(0));
        weakref::finalize f1(*obj, say, "f1");
        weakref::finalize f2(*obj, [] { throw std::logic_error("bad"); });
        weakref::finalize f3(*obj, say, "f3");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "^f3\nhook \\[finalize at exit\\] bad\nf1\n$");
}
