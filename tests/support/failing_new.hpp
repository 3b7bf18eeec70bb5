// support/failing_new.hpp — a replacement of the global operator new that fails on demand, for
// the out-of-memory tests. It defines the replaceable operators, so include it in exactly one
// translation unit of a test program.
//
//   allocations_before_failure = 2;   // on this thread, the third allocation throws bad_alloc
//   ...
//   allocations_before_failure = -1;  // never fails again
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

// Allocations left before operator new fails on this thread; negative: never fails.
inline thread_local long allocations_before_failure = -1;

void* operator new(std::size_t size) {
  if (allocations_before_failure == 0) throw std::bad_alloc();
  if (allocations_before_failure > 0) --allocations_before_failure;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// GCC sees free() of what operator new returned, not knowing that this operator new mallocs.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
