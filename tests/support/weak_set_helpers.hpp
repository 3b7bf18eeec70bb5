// support/weak_set_helpers.hpp — what the weak_set test files share (include dir: tests/):
//
//   auto a = make(log, "a");   // a tracked object made by weakref::make_shared
//   names(s);                  // the names of a weak_set's members, in iteration order
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/tracked.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/weak_set.hpp"

namespace weak_set_helpers {

inline std::shared_ptr<tracked> make(event_log& log, std::string name) {
  return weakref::make_shared<tracked>(log, std::move(name));
}

template <class T>
std::vector<std::string> names(const weakref::weak_set<T>& s) {
  std::vector<std::string> result;
  for (const auto& member : s) result.push_back(member->name());
  return result;
}

}  // namespace weak_set_helpers
