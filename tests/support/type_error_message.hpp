// support/type_error_message.hpp — type_error_message(f): the what() of the weakref::type_error
// that `f` throws, or "<no type_error>" if it throws none (include dir: tests/).
#pragma once

#include <string>
#include <utility>

#include "weakref/errors.hpp"

template <class F>
std::string type_error_message(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const weakref::type_error& e) {
    return e.what();
  }
  return "<no type_error>";
}
