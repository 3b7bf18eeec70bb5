// Built as island_a and island_b with WEAKREF_PROCESS_WIDE defined empty: every weakref
// symbol of this library is hidden, so it has its own collector registry and hook slot.
#include <stdexcept>

#include "shared.hpp"

namespace {

void make_cycle() {
  auto a = weakref::make_shared<Node>();
  auto b = weakref::make_shared<Node>();
  a->next = b;
  b->next = a;
}
std::size_t tracked() { return weakref::gc::get_objects().size(); }
std::size_t collect() { return weakref::gc::collect(); }
void set_hook(int* calls) {
  weakref::set_unraisable_hook([calls](const weakref::unraisable&) { ++*calls; });
}
void throwing_death() {
  auto item = weakref::make_shared<Item>();
  weakref::ref<Item> r(item, [] { throw std::runtime_error("island callback"); });
  item.reset();
}

}  // namespace

island_api ISLAND_ENTRY() { return {make_cycle, tracked, collect, set_hook, throwing_death}; }
