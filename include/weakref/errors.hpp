// weakref/errors.hpp — the two exceptions the library throws.
// Python: TypeError ("cannot create weak reference to ...") and ReferenceError.
//
// Example:
//   try {
//     weakref::ref<int> r(std::make_shared<int>(1));  // not made by weakref::make_shared
//   } catch (const weakref::type_error& e) {
//     std::puts(e.what());  // "... was not created by weakref::make_shared ..."
//   }
//
// Lifetime and thread-safety: plain exception types.
#pragma once

#include <stdexcept>
#include <string>

namespace weakref {

// weakref::type_error
//
// Thrown when a facility is given a std::shared_ptr that cannot be weakly referenced:
// an empty one, or one whose object was not created by weakref::make_shared or
// weakref::allocate_shared. The message names the facility and the fix.
struct type_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// weakref::reference_error
//
// Thrown when a dead weakref::proxy is used. The message is CPython's:
// "weakly-referenced object no longer exists".
struct reference_error : std::runtime_error {
  reference_error() : std::runtime_error("weakly-referenced object no longer exists") {}
  using std::runtime_error::runtime_error;
};

}  // namespace weakref
