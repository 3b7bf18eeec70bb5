// bench/items.hpp — the objects the container and event-bus benchmarks store.
#pragma once

#include <cstdint>

namespace weakref_bench {

// An observer with a virtual, out-of-line notify(). The second implementation keeps the
// compiler from devirtualizing the call: every benchmark makes a real virtual call.
struct item {
  explicit item(std::uint64_t id) noexcept : id(id) {}
  item(const item&) = delete;
  item& operator=(const item&) = delete;
  virtual ~item() = default;
  virtual void notify(std::uint64_t& sum) const noexcept;
  std::uint64_t id;
};

struct silent_item final : item {
  using item::item;
  void notify(std::uint64_t& sum) const noexcept override;
};

[[gnu::noinline]] inline void item::notify(std::uint64_t& sum) const noexcept { sum += id; }
[[gnu::noinline]] inline void silent_item::notify(std::uint64_t&) const noexcept {}

// Distinct int keys, not in order: multiplying by an odd constant is a bijection mod 2^32.
inline int key_of(std::uint64_t i) {
  return static_cast<int>(static_cast<std::uint32_t>(i) * 0x9E3779B1u);
}

}  // namespace weakref_bench
