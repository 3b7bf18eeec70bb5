// support/weak_value_map_helpers.hpp — the fixture shared by the weak_value_map test files
// (include dir: tests/).
//
//   using weak_value_map_helpers::tmap;            // weak_value_map<std::string, tracked>
//   using weak_value_map_helpers::weak_value_map;  // the fixture: TEST_F(weak_value_map, ...)
//
// In a TEST_F body, make("a") creates a tracked object named "a" that logs its death in `log`.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "support/tracked.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/weak_value_map.hpp"

namespace weak_value_map_helpers {

using tmap = weakref::weak_value_map<std::string, tracked>;

class weak_value_map : public testing::Test {
 protected:
  std::shared_ptr<tracked> make(const std::string& name) {
    return weakref::make_shared<tracked>(log, name);
  }
  event_log log;
};

}  // namespace weak_value_map_helpers
