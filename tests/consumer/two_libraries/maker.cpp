#include <atomic>

#include "shared.hpp"

namespace {

std::atomic<long> live_blocks{0};

// Counts the blocks of maker's Items: a leaked weak reference node keeps its object's block.
template <class T>
struct counting_allocator {
  using value_type = T;
  counting_allocator() = default;
  template <class U>
  counting_allocator(const counting_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    ++live_blocks;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    --live_blocks;
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const counting_allocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace

std::shared_ptr<Item> maker_item(int id) {
  return weakref::allocate_shared<Item>(counting_allocator<Item>(), Item{id});
}
long maker_live_blocks() { return live_blocks.load(); }

std::shared_ptr<Node> maker_node() { return weakref::make_shared<Node>(); }

void maker_cycle() {
  auto a = weakref::make_shared<Node>();
  auto b = weakref::make_shared<Node>();
  a->next = b;
  b->next = a;
}

weakref::ref<Item> maker_ref(const std::shared_ptr<Item>& item, int* calls) {
  return weakref::ref<Item>(item, [calls] { ++*calls; });
}

std::unique_ptr<item_set> maker_set(const std::vector<std::shared_ptr<Item>>& items) {
  auto set = std::make_unique<item_set>();
  for (auto& item : items) set->add(item);
  return set;
}

std::unique_ptr<item_map> maker_map(const std::vector<std::shared_ptr<Item>>& items) {
  auto map = std::make_unique<item_map>();
  for (auto& item : items) (*map)[item] = "maker " + std::to_string(item->id);
  return map;
}

std::vector<weakref::ref<Item>> maker_keyrefs(item_map& map) { return map.keyrefs(); }

std::size_t maker_collect() { return weakref::gc::collect(); }
std::size_t maker_tracked() { return weakref::gc::get_objects().size(); }

void maker_finalize(const std::shared_ptr<Item>& item, std::vector<std::string>* log,
                    std::string name) {
  weakref::finalize(item, [log, name] { log->push_back(name); });
}
