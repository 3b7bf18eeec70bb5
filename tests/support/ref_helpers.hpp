// support/ref_helpers.hpp — what the ref test files share (include dir: tests/): base_a, base_b
// and `derived` (base_b at a non-zero offset), and type_error_message(f).
#pragma once

#include <string>

#include "weakref/errors.hpp"

namespace ref_helpers {

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

}  // namespace ref_helpers
