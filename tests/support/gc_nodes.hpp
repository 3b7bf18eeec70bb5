// support/gc_nodes.hpp — tracked object types for the cycle collector tests.
//
//   event_log log;
//   auto a = weakref::make_shared<gc_node>(log, "a");   // tracked: gc_node has traverse
//   a->next = a;                                        // a self-cycle
//   a.reset();
//   weakref::gc::collect();                             // logs "~a", returns 1
//
// gc_node's destructor logs "~<name>", so each event is one object freed.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/tracked.hpp"
#include "weakref/gc.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/ref.hpp"

struct gc_node {
  gc_node(event_log& log, std::string name) : log_(&log), name_(std::move(name)) {}
  gc_node(const gc_node&) = delete;
  gc_node& operator=(const gc_node&) = delete;
  ~gc_node() { log_->add("~" + name_); }

  const std::string& name() const { return name_; }

  std::shared_ptr<gc_node> next;
  std::vector<std::shared_ptr<gc_node>> kids;
  weakref::ref<gc_node> held;  // a weak reference this node keeps

  template <class V>
  void traverse(V& visit) {
    visit("next", next);
    visit("kids", kids);
    visit("held", held);
  }

 private:
  event_log* log_;
  std::string name_;
};

inline std::shared_ptr<gc_node> make_node(event_log& log, std::string name) {
  return weakref::make_shared<gc_node>(log, std::move(name));
}

// Two tracked objects of T (each made from `args`) whose `next` members own each other; the
// caller's pointers are the only outside owners.
template <class T, class... Args>
std::pair<std::shared_ptr<T>, std::shared_ptr<T>> make_cycle_of(Args&... args) {
  auto first = weakref::make_shared<T>(args...);
  auto second = weakref::make_shared<T>(args...);
  first->next = second;
  second->next = first;
  return {first, second};
}

// Two gc_nodes named `a` and `b` that own each other.
inline std::pair<std::shared_ptr<gc_node>, std::shared_ptr<gc_node>> make_pair_cycle(
    event_log& log, const std::string& a, const std::string& b) {
  auto first = make_node(log, a);
  auto second = make_node(log, b);
  first->next = second;
  second->next = first;
  return {first, second};
}
