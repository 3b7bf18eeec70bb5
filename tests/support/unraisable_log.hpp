// unraisable_log: while it lives, the unraisable hook records "<where>: <what()>" for each
// report; the previous hook comes back when it is destroyed.
#pragma once

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "weakref/unraisable.hpp"

class unraisable_log {
 public:
  unraisable_log()
      : previous_(weakref::set_unraisable_hook([this](const weakref::unraisable& u) {
          try {
            std::rethrow_exception(u.error);
          } catch (const std::exception& e) {
            entries.push_back(std::string(u.where) + ": " + e.what());
          }
        })) {}
  unraisable_log(const unraisable_log&) = delete;
  unraisable_log& operator=(const unraisable_log&) = delete;
  ~unraisable_log() { weakref::set_unraisable_hook(std::move(previous_)); }

  std::vector<std::string> entries;

 private:
  weakref::unraisable_hook previous_;
};
