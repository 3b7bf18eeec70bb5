// support/weak_key_map_helpers.hpp — what the weak_key_map test files share (include dir:
// tests/): `widget` (an id), make(id) creating one with weakref::make_shared, and
// `wmap` = weak_key_map<widget, int>.
#pragma once

#include <memory>

#include "weakref/make_shared.hpp"
#include "weakref/weak_key_map.hpp"

namespace weak_key_map_helpers {

struct widget {
  explicit widget(int i) : id(i) {}
  int id;
};

inline std::shared_ptr<widget> make(int id) { return weakref::make_shared<widget>(id); }

using wmap = weakref::weak_key_map<widget, int>;

}  // namespace weak_key_map_helpers
