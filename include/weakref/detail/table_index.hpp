// weakref/detail/table_index.hpp — the hash index of a weak table (weak_table.hpp): open
// addressing over node pointers, with linear probing and backward-shift deletion, and a few
// bits of each node's hash kept in the pointer's alignment bits. It only files and finds nodes:
// it owns none and knows nothing of their lifetimes or fields (the table decides when they come
// and go), so it can be read, changed and tested on its own.
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
// bits 32 and up, the tag from the bits just below (28 and up, for 16-byte alignment).
template <class Node>
class table_index {
 public:
  // The filed node with `hash` for which `same(node)` holds, or null.
  template <class Same>
  Node* find(std::uint64_t hash, Same same) const {
    if (slots_.empty()) return nullptr;
    auto mask = slots_.size() - 1;
    for (auto s = home(hash); slots_[s] != 0; s = (s + 1) & mask) {
      if ((slots_[s] & tag_mask) != tag_of(hash)) continue;
      auto* n = node_in(slots_[s]);
      if (n->hash == hash && same(*n)) return n;
    }
    return nullptr;
  }

  // Whether `count` nodes fit (load factor 3/4).
  bool has_room(std::size_t count) const noexcept { return count * 4 <= slots_.size() * 3; }
  // Grows (doubling) until `count` nodes fit, and empties: the caller files its nodes again.
  // If the allocation throws, the index is unchanged.
  void grow_empty(std::size_t count) {
    std::size_t size = slots_.empty() ? 8 : slots_.size() * 2;
    while (count * 4 > size * 3) size *= 2;
    std::vector<std::uintptr_t> fresh(size);
    slots_.swap(fresh);
  }

  // Files `n` (not filed yet). There must be room for it (has_room).
  void insert(const Node* n) noexcept {
    auto mask = slots_.size() - 1;
    auto s = home(n->hash);
    while (slots_[s] != 0) s = (s + 1) & mask;
    slots_[s] = slot_for(n);
  }

  // Unfiles `n` (filed).
  void erase(const Node* n) noexcept {
    auto mask = slots_.size() - 1;
    auto s = slot_of(n);
    // Backward-shift deletion: pull later members of the probe run into the hole.
    for (auto next = (s + 1) & mask; slots_[next] != 0; next = (next + 1) & mask) {
      auto want = home(node_in(slots_[next])->hash);
      if (((next - want) & mask) >= ((next - s) & mask)) {
        slots_[s] = slots_[next];
        s = next;
      }
    }
    slots_[s] = 0;
  }

  // `to` (same hash, not filed) takes the slot of `from` (filed).
  void replace(const Node* from, const Node* to) noexcept { slots_[slot_of(from)] = slot_for(to); }

  // Unfiles every node, keeping the room.
  void clear() noexcept { std::fill(slots_.begin(), slots_.end(), 0); }
  void swap(table_index& other) noexcept { slots_.swap(other.slots_); }

 private:
  // A slot: a node pointer with a few bits of its hash (four, for 16-byte alignment) in the
  // alignment bits, so most probes that miss never touch the node. 0 = empty.
  static constexpr std::uintptr_t tag_mask = alignof(Node) - 1;
  // Bits just below those that pick the home slot: well mixed, and independent of the home.
  // (The lowest bits would not do: for identity keys they are the same for every object.)
  static std::uintptr_t tag_of(std::uint64_t hash) noexcept { return (hash >> 28) & tag_mask; }
  static std::uintptr_t slot_for(const Node* n) noexcept {
    return reinterpret_cast<std::uintptr_t>(n) | tag_of(n->hash);
  }
  static Node* node_in(std::uintptr_t slot) noexcept {
    return reinterpret_cast<Node*>(slot & ~tag_mask);  // NOLINT(performance-no-int-to-ptr): tagged
  }

  std::size_t home(std::uint64_t hash) const noexcept {
    return static_cast<std::size_t>(hash >> 32) & (slots_.size() - 1);
  }

  std::size_t slot_of(const Node* n) const noexcept {
    auto mask = slots_.size() - 1;
    auto s = home(n->hash);
    while (node_in(slots_[s]) != n) s = (s + 1) & mask;
    return s;
  }

  std::vector<std::uintptr_t> slots_;  // a power of two in size, or empty
};

}  // namespace weakref::detail
