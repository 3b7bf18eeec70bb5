// support/finalize_helpers.hpp — what the finalize test files share (include dir: tests/):
// `strings`, and `tracked`, an object that appends "destructor" to a `strings` log when it dies.
// (Not support/tracked.hpp's tracked: these tests log into a plain vector.)
#pragma once

#include <string>
#include <vector>

namespace finalize_helpers {

using strings = std::vector<std::string>;

// An object that records its destruction in `log`.
struct tracked {
  explicit tracked(strings* log) : log(log) {}
  tracked(const tracked&) = delete;
  tracked& operator=(const tracked&) = delete;
  ~tracked() { log->push_back("destructor"); }
  strings* log;
};

}  // namespace finalize_helpers
