#include <stdexcept>

#include "shared.hpp"

bool receiver_weakrefable(const std::shared_ptr<Item>& item) {
  return weakref::is_weakrefable(item);
}

std::shared_ptr<Item> receiver_item(int id) { return weakref::make_shared<Item>(Item{id}); }

weakref::ref<Item> receiver_ref(const std::shared_ptr<Item>& item, int* calls) {
  return weakref::ref<Item>(item, [calls] { ++*calls; });
}

weakref::ref<Item> receiver_throwing_ref(const std::shared_ptr<Item>& item) {
  return weakref::ref<Item>(item, [] { throw std::runtime_error("receiver callback"); });
}

bool receiver_locks(const std::shared_ptr<Node>& node) {
  weakref::ref<Node> r(node);
  return r.lock() == node;
}

std::vector<int> receiver_ids(item_set& set) {
  std::vector<int> ids;
  for (auto& item : set) ids.push_back(item->id);
  return ids;
}

void receiver_add(item_set& set, const std::shared_ptr<Item>& item) { set.add(item); }

std::size_t receiver_size(item_map& map) { return map.size(); }

void receiver_put(item_map& map, const std::shared_ptr<Item>& item, std::string value) {
  map[item] = std::move(value);
}

void receiver_destroy(std::unique_ptr<item_map> map) { map.reset(); }

void receiver_close_cycle(const std::shared_ptr<Node>& from_maker) {
  auto mine = weakref::make_shared<Node>();
  mine->next = from_maker;
  from_maker->next = mine;
}

std::size_t receiver_collect() { return weakref::gc::collect(); }
std::size_t receiver_tracked() { return weakref::gc::get_objects().size(); }

void receiver_set_hook(int* calls) {
  weakref::set_unraisable_hook([calls](const weakref::unraisable&) { ++*calls; });
}

void receiver_finalize(const std::shared_ptr<Item>& item, std::vector<std::string>* log,
                       std::string name) {
  weakref::finalize(item, [log, name] { log->push_back(name); });
}
