// support/tracked.hpp — lifetime tracking shared by the weakref tests (include dir: tests/).
//
//   event_log log;                  // an append-only list of events; add() is thread-safe
//   log.add("cb");                  // appends one event (any thread)
//   log.snapshot();                 // a copy of the events so far (any thread)
//   log.events;                     // the events; read it directly only when no thread adds
//   log.clear();
//
//   auto obj = weakref::make_shared<tracked>(log, "a");
//   obj.reset();                    // ~tracked() logs "~a"
//   obj->name();                    // "a"
//
// Typical check: EXPECT_THAT(log.events, testing::ElementsAre("cb2", "cb1", "~a"));
// tracked is neither copyable nor movable, so each "~name" means exactly one object died.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

struct event_log {
  std::vector<std::string> events;

  void add(std::string event) {
    std::lock_guard lock(mutex_);
    events.push_back(std::move(event));
  }
  std::vector<std::string> snapshot() const {
    std::lock_guard lock(mutex_);
    return events;
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return events.size();
  }
  void clear() {
    std::lock_guard lock(mutex_);
    events.clear();
  }

 private:
  mutable std::mutex mutex_;
};

struct tracked {
  tracked(event_log& log, std::string name) : log_(&log), name_(std::move(name)) {}
  tracked(const tracked&) = delete;
  tracked& operator=(const tracked&) = delete;
  virtual ~tracked() { log_->add("~" + name_); }

  const std::string& name() const noexcept { return name_; }
  event_log& log() const noexcept { return *log_; }

 private:
  event_log* log_;
  std::string name_;
};
