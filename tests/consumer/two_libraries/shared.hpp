// The interface between the two libraries and the executable. Only what is marked API is
// exported: the libraries are built with -fvisibility=hidden -fvisibility-inlines-hidden, so
// each has its own copy of every weakref inline function it uses.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>
#include <weakref/weakref.hpp>

#define API __attribute__((visibility("default")))

struct Item {
  int id = 0;
};

// Tracked by the collector (it has traverse).
struct Node {
  std::shared_ptr<Node> next;
  template <class V>
  void traverse(V& visit) {
    visit(next);
  }
};

using item_set = weakref::weak_set<Item>;
using item_map = weakref::weak_key_map<Item, std::string>;

// maker.cpp: makes the objects (Items from a counting allocator) and the containers.
API std::shared_ptr<Item> maker_item(int id);
API long maker_live_blocks();  // Items allocated by maker_item and not yet freed
API std::shared_ptr<Node> maker_node();
API void maker_cycle();  // two tracked Nodes owning each other, no outside owner
API weakref::ref<Item> maker_ref(const std::shared_ptr<Item>& item, int* calls);
API std::unique_ptr<item_set> maker_set(const std::vector<std::shared_ptr<Item>>& items);
API std::unique_ptr<item_map> maker_map(const std::vector<std::shared_ptr<Item>>& items);
API std::vector<weakref::ref<Item>> maker_keyrefs(item_map& map);
API std::size_t maker_collect();
API std::size_t maker_tracked();
API void maker_finalize(const std::shared_ptr<Item>& item, std::vector<std::string>* log,
                        std::string name);

// receiver.cpp: receives them.
API bool receiver_weakrefable(const std::shared_ptr<Item>& item);
API std::shared_ptr<Item> receiver_item(int id);
API weakref::ref<Item> receiver_ref(const std::shared_ptr<Item>& item, int* calls);
API weakref::ref<Item> receiver_throwing_ref(const std::shared_ptr<Item>& item);
API bool receiver_locks(const std::shared_ptr<Node>& node);  // through a ref made here
API std::vector<int> receiver_ids(item_set& set);
API void receiver_add(item_set& set, const std::shared_ptr<Item>& item);
API std::size_t receiver_size(item_map& map);
API void receiver_put(item_map& map, const std::shared_ptr<Item>& item, std::string value);
API void receiver_destroy(std::unique_ptr<item_map> map);
API void receiver_close_cycle(const std::shared_ptr<Node>& from_maker);  // maker <-> receiver
API std::size_t receiver_collect();
API std::size_t receiver_tracked();
API void receiver_set_hook(int* calls);
API void receiver_finalize(const std::shared_ptr<Item>& item, std::vector<std::string>* log,
                           std::string name);

// island.cpp, built twice (island_a, island_b) with WEAKREF_PROCESS_WIDE defined empty: each
// keeps its own collector registry and hook slot.
struct island_api {
  void (*make_cycle)();
  std::size_t (*tracked)();
  std::size_t (*collect)();
  void (*set_hook)(int* calls);
  void (*throwing_death)();  // an object of this island dies, its callback throws
};
extern "C" API island_api island_a();
extern "C" API island_api island_b();
