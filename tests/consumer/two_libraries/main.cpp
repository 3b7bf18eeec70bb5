// Exchanges weakref objects, refs and containers between two shared libraries built with
// hidden visibility; exits non-zero if anything that must work across them does not.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "shared.hpp"

namespace {

int failures = 0;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                                   \
    }                                                                               \
  } while (0)

// Finalizers still pending at exit run newest first, across both libraries: one registry.
std::vector<std::string>* exit_log = new std::vector<std::string>;  // never destroyed

void check_exit_run() {
  std::vector<std::string> expected{"receiver 2", "maker 2", "receiver 1", "maker 1"};
  if (*exit_log != expected) {
    std::fprintf(stderr, "finalizers at exit ran as:");
    for (auto& name : *exit_log) std::fprintf(stderr, " [%s]", name.c_str());
    std::fprintf(stderr, "\n");
    std::_Exit(1);
  }
  std::puts("finalizers at exit: one run, newest first across both libraries");
}

}  // namespace

int main() {
  // Registered before any finalizer, so it runs after their exit run.
  std::atexit(check_exit_run);

  // A library that never made a tracked object locks a ref to one made by the other, whose
  // use count's second byte is not 0. With a per-library collector registry the receiver
  // had not learnt where a record sits, read the verdict from the use count, and answered
  // "dead" (or waited forever) for a live object.
  for (int owners : {1, 600}) {
    auto node = maker_node();
    std::vector<std::shared_ptr<Node>> copies(owners - 1, node);
    CHECK(receiver_locks(node));
  }

  // Refs and callbacks: made on either side, objects made and killed on either side.
  auto from_maker = maker_item(1);
  CHECK(receiver_weakrefable(from_maker));  // typeid(object_header) matches across libraries
  int maker_calls = 0, receiver_calls = 0;
  auto r1 = receiver_ref(from_maker, &receiver_calls);
  auto r2 = maker_ref(from_maker, &maker_calls);
  CHECK(weakref::getweakrefcount(from_maker) == 2);
  CHECK(r1.lock() == from_maker && r2.lock() == from_maker);
  from_maker.reset();
  CHECK(receiver_calls == 1 && maker_calls == 1);
  CHECK(!r1.lock() && !r2.lock());
  auto from_receiver = receiver_item(2);
  auto r3 = maker_ref(from_receiver, &maker_calls);
  from_receiver.reset();
  CHECK(maker_calls == 2 && !r3.lock());

  // Containers made by one library, read, filled and destroyed by the other.
  {
    std::vector<std::shared_ptr<Item>> items{maker_item(10), maker_item(11), maker_item(12)};
    auto set = maker_set(items);
    auto other = receiver_item(13);
    receiver_add(*set, other);
    items[1].reset();  // dies while in the set
    auto ids = receiver_ids(*set);
    std::sort(ids.begin(), ids.end());
    CHECK((ids == std::vector<int>{10, 12, 13}));
    other.reset();
    CHECK(set->size() == 2);

    auto map = maker_map({items[0], items[2]});  // 10 and 12 (11 is gone)
    receiver_put(*map, items[2], "receiver 12");
    CHECK(receiver_size(*map) == 2);
    CHECK(map->get(items[2]) == "receiver 12");
    items[0].reset();
    CHECK(receiver_size(*map) == 1);
    // The map dies in the receiver while a keyref (sharing the map's entry node, made by the
    // maker's code) outlives it; then the key dies. The maker's code must see that the map
    // closed its inbox, or the node is posted to a dead inbox and leaks with its key's block.
    auto keyrefs = maker_keyrefs(*map);
    CHECK(keyrefs.size() == 1);
    receiver_destroy(std::move(map));
    items.clear();
    CHECK(!keyrefs[0].lock());
  }
  r1 = weakref::ref<Item>();  // the last weak references to item 1's block
  r2 = weakref::ref<Item>();
  CHECK(maker_live_blocks() == 0);

  // The collector: one registry, whichever library made or collects the objects.
  auto before = weakref::gc::get_objects().size();
  maker_cycle();
  CHECK(receiver_tracked() == before + 2 && maker_tracked() == before + 2);
  CHECK(receiver_collect() == 2);
  auto half = maker_node();
  receiver_close_cycle(half);  // a cycle with one member made by each library
  half.reset();
  CHECK(maker_collect() == 2);
  CHECK(weakref::gc::get_objects().size() == before);

  // The unraisable hook: set in the receiver, it receives reports from deaths in the maker.
  int hook_calls = 0;
  receiver_set_hook(&hook_calls);
  {
    auto item = maker_item(20);
    auto r = receiver_throwing_ref(item);
    item.reset();
  }
  CHECK(hook_calls == 1);
  weakref::set_unraisable_hook({});

  // Finalizers pending at exit, made alternately by the two libraries (the objects are never
  // freed, so the finalizers are still alive at exit); check_exit_run checks the order.
  for (int i = 1; i <= 2; ++i) {
    auto* keep = new std::shared_ptr<Item>(maker_item(30 + i));
    maker_finalize(*keep, exit_log, "maker " + std::to_string(i));
    receiver_finalize(*keep, exit_log, "receiver " + std::to_string(i));
  }

  // The documented opt-out, WEAKREF_PROCESS_WIDE defined empty: each island library has its
  // own collector registry and hook slot, which neither the other island nor this program sees.
  auto a = island_a(), b = island_b();
  before = weakref::gc::get_objects().size();
  a.make_cycle();
  CHECK(a.tracked() == 2 && b.tracked() == 0 && weakref::gc::get_objects().size() == before);
  CHECK(b.collect() == 0 && weakref::gc::collect() == 0);
  CHECK(a.collect() == 2);
  int a_hook = 0, b_hook = 0;
  a.set_hook(&a_hook);
  b.set_hook(&b_hook);
  b.throwing_death();
  CHECK(a_hook == 0 && b_hook == 1);
  a.throwing_death();
  CHECK(a_hook == 1 && b_hook == 1);

  if (failures == 0) std::puts("two libraries: ok");
  return failures == 0 ? 0 : 1;
}
