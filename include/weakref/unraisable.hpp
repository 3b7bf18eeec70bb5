// weakref/unraisable.hpp — where exceptions go that nobody can catch: those thrown by
// weakref callbacks and finalizers while an object dies. Python: sys.unraisablehook.
//
// Example:
//   auto previous = weakref::set_unraisable_hook([](const weakref::unraisable& u) {
//     try { std::rethrow_exception(u.error); }
//     catch (const std::exception& e) { log("%s: %s", std::string(u.where).c_str(), e.what()); }
//   });
//   ...
//   weakref::set_unraisable_hook(previous);  // an empty hook restores the default
//
// Lifetime and thread-safety: the hook is process-wide. set_unraisable_hook may be called
// from any thread; the hook itself is called on the thread where the exception was thrown
// (the thread that dropped the last strong reference), possibly on several threads at once.
#pragma once

#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "weakref/detail/visibility.hpp"

namespace weakref {

// weakref::unraisable
//
// What the hook receives: the exception and the kind of code that threw it
// ("weakref callback", "proxy callback", "weak_method callback", "finalize", ...).
struct unraisable {
  std::exception_ptr error;
  std::string_view where;
};

using unraisable_hook = std::function<void(const unraisable&)>;

namespace detail {

struct unraisable_hook_slot {
  std::mutex mutex;
  std::shared_ptr<const unraisable_hook> hook;  // null: the default hook
};

WEAKREF_PROCESS_WIDE inline unraisable_hook_slot& hook_slot() noexcept {
  // Never destroyed: objects may die (and callbacks throw) during static destruction. Built in
  // static storage, not with new: the first report may come when memory is exhausted, and
  // report_unraisable is noexcept (a bad_alloc here would be std::terminate).
  alignas(unraisable_hook_slot) static unsigned char storage[sizeof(unraisable_hook_slot)];
  static auto* slot = new (storage) unraisable_hook_slot;
  return *slot;
}

// The default hook. Allocates nothing (it is what reports a bad_alloc thrown by a callback
// when memory is exhausted): the line is put together in a buffer on the stack and written at
// once, so that concurrent reports do not interleave; a line too long for the buffer is
// written in pieces.
inline void print_unraisable(const unraisable& u) noexcept {
  const char* what = "unknown exception";
  try {
    std::rethrow_exception(u.error);
  } catch (const std::exception& e) {
    what = e.what();  // owned by the exception object, which u.error keeps alive
  } catch (...) {
  }
  const std::string_view parts[] = {"weakref: exception ignored in ", u.where, ": ", what, "\n"};
  char line[512];
  std::size_t length = 0;
  for (auto part : parts) {
    if (part.size() > sizeof line - length) {
      for (auto piece : parts) std::fwrite(piece.data(), 1, piece.size(), stderr);
      return;
    }
    part.copy(line + length, part.size());
    length += part.size();
  }
  std::fwrite(line, 1, length, stderr);
}

// Reports an exception that escaped user code run on a death path. Never throws: if the
// hook itself throws, both exceptions are printed by the default hook (CPython prints only the
// hook's own).
inline void report_unraisable(std::exception_ptr error, std::string_view where) noexcept {
  std::shared_ptr<const unraisable_hook> hook;
  {
    auto& slot = hook_slot();
    std::lock_guard lock(slot.mutex);
    hook = slot.hook;
  }
  unraisable u{std::move(error), where};
  if (!hook) return print_unraisable(u);
  try {
    (*hook)(u);
  } catch (...) {
    print_unraisable({std::current_exception(), "the unraisable hook"});
    print_unraisable(u);
  }
}

}  // namespace detail

// weakref::set_unraisable_hook
//
// Installs `hook` and returns the previous one (empty if the previous one was the default).
// An empty `hook` restores the default, which prints one line to stderr:
//   weakref: exception ignored in weakref callback: <what()>
// The previous hook is copied and destroyed after the slot's lock is released: its destructor
// may drop objects whose callbacks throw, and their reports take that lock.
inline unraisable_hook set_unraisable_hook(unraisable_hook hook) {
  auto previous = hook ? std::make_shared<const unraisable_hook>(std::move(hook)) : nullptr;
  auto& slot = detail::hook_slot();
  {
    std::lock_guard lock(slot.mutex);
    previous.swap(slot.hook);
  }
  return previous ? *previous : unraisable_hook{};
}

}  // namespace weakref
