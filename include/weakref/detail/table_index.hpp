// weakref/detail/table_index.hpp — the hash index of a weak table (weak_table.hpp): open
// addressing over node pointers, each kept with its node's hash, with linear probing and
// backward-shift deletion. It only files and finds nodes: it owns none and knows nothing of
// their lifetimes or fields (the table decides when they come and go), so it can be read,
// changed and tested on its own.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace weakref::detail {

// Mixes a hash so that linear probing spreads it (pointers and small integers included).
// Multiplying by an odd constant is a bijection, so for identity keys equal mixed hashes
// mean equal pointers.
inline std::uint64_t mix_hash(std::uint64_t h) noexcept {
  h ^= h >> 32;
  return h * 0x9E3779B97F4A7C15ull;
}

// table_index<Node>: a set of Node pointers filed by their `hash` member (a mixed hash, see
// mix_hash; it must not change while the node is filed). The home slot comes from the hash's
// bits 32 and up. Each slot keeps the node's whole hash beside its pointer, so that probing,
// deleting and growing read slots only: a probe touches a node only when its hash is the one
// looked for, and deleting from a large table does not take a cache miss on each neighbour.
template <class Node>
class table_index {
 public:
  // The filed node with `hash` for which `same(node)` holds, or null.
  template <class Same>
  Node* find(std::uint64_t hash, Same same) const {
    if (slots_.empty()) return nullptr;
    auto mask = slots_.size() - 1;
    for (auto s = home(hash); slots_[s].node; s = (s + 1) & mask) {
      if (slots_[s].hash == hash && same(*slots_[s].node)) return slots_[s].node;
    }
    return nullptr;
  }

  // Whether `count` nodes fit (load factor 3/4).
  bool has_room(std::size_t count) const noexcept { return count * 4 <= slots_.size() * 3; }
  // Grows (doubling) until `count` nodes fit, refiling the filed nodes from their slots. If the
  // allocation throws, the index is unchanged.
  void grow(std::size_t count) {
    std::size_t size = slots_.empty() ? 8 : slots_.size() * 2;
    while (count * 4 > size * 3) size *= 2;
    std::vector<slot> old(size);
    slots_.swap(old);
    for (const auto& filed : old) {
      if (filed.node) file(filed);
    }
  }

  // Files `n` (not filed yet). There must be room for it (has_room).
  void insert(Node* n) noexcept { file({n, n->hash}); }

  // Unfiles `n` (filed).
  void erase(const Node* n) noexcept {
    auto mask = slots_.size() - 1;
    auto s = slot_of(n);
    // Backward-shift deletion: pull later members of the probe run into the hole.
    for (auto next = (s + 1) & mask; slots_[next].node; next = (next + 1) & mask) {
      auto want = home(slots_[next].hash);
      if (((next - want) & mask) >= ((next - s) & mask)) {
        slots_[s] = slots_[next];
        s = next;
      }
    }
    slots_[s] = slot{};
  }

  // `to` (same hash, not filed) takes the slot of `from` (filed).
  void replace(const Node* from, Node* to) noexcept { slots_[slot_of(from)].node = to; }

  // Unfiles every node, keeping the room.
  void clear() noexcept { std::fill(slots_.begin(), slots_.end(), slot{}); }
  void swap(table_index& other) noexcept { slots_.swap(other.slots_); }

 private:
  struct slot {
    Node* node = nullptr;  // null: empty
    std::uint64_t hash = 0;
  };

  void file(slot filed) noexcept {
    auto mask = slots_.size() - 1;
    auto s = home(filed.hash);
    while (slots_[s].node) s = (s + 1) & mask;
    slots_[s] = filed;
  }

  std::size_t home(std::uint64_t hash) const noexcept {
    return static_cast<std::size_t>(hash >> 32) & (slots_.size() - 1);
  }

  std::size_t slot_of(const Node* n) const noexcept {
    auto mask = slots_.size() - 1;
    auto s = home(n->hash);
    while (slots_[s].node != n) s = (s + 1) & mask;
    return s;
  }

  std::vector<slot> slots_;  // a power of two in size, or empty
};

}  // namespace weakref::detail
