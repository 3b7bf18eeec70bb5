// memory_report: bytes per weakly referenceable object, per handle and per container entry,
// ours beside the baseline's, counted by the global operator new/delete below (not guessed).
// Prints one JSON object: {"rows": [{"key", "ours": {...}, "base": {...}}, ...]} where each side
// has "bytes" (per instance: sizeof the handle + the heap bytes it keeps alive, i.e. requested
// minus freed while n instances exist) and "allocations" (heap allocations per instance).
// tools/perf_report.py turns it into the memory table.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "items.hpp"
#include "weakref/weakref.hpp"

// --- counting operator new/delete: a 16-byte header remembers each block's requested size ---

namespace {
bool g_counting = false;  // single-threaded program
std::size_t g_requested = 0, g_freed = 0, g_allocations = 0;
constexpr std::size_t header = 16;  // keeps malloc's 16-byte alignment
}  // namespace

// noinline: inlined into callers, GCC 12 reports free(block) as -Wmismatched-new-delete.
[[gnu::noinline]] void* operator new(std::size_t n) {
  auto* block = static_cast<unsigned char*>(std::malloc(n + header));
  if (!block) throw std::bad_alloc();
  *reinterpret_cast<std::size_t*>(block) = n;
  if (g_counting) {
    g_requested += n;
    ++g_allocations;
  }
  return block + header;
}
void* operator new[](std::size_t n) { return ::operator new(n); }
[[gnu::noinline]] void operator delete(void* p) noexcept {
  if (!p) return;
  auto* block = static_cast<unsigned char*>(p) - header;
  if (g_counting) g_freed += *reinterpret_cast<std::size_t*>(block);
  std::free(block);
}
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete(p); }

namespace {

using weakref_bench::item;
using weakref_bench::key_of;

struct bytes64 {
  unsigned char bytes[64] = {};
};

// 16 bytes, with and without traverse: weakref::make_shared tracks the first (weakref/gc.hpp).
struct node16 {
  std::shared_ptr<node16> other;
};
struct tracked16 {
  std::shared_ptr<tracked16> other;
  template <class V>
  void traverse(V& visit) {
    visit(other);
  }
};

struct usage {
  double bytes = 0, allocations = 0;
};

// Keeps `n` results of make(i) alive at once; per instance: sizeof(result) + the heap bytes
// still held (requested - freed, so growth garbage is excluded) and the allocations made.
template <class Make>
usage per_instance(std::size_t n, Make make, bool count_sizeof = true) {
  using handle = decltype(make(std::size_t{}));
  std::vector<handle> kept;
  kept.reserve(n);
  g_requested = g_freed = g_allocations = 0;
  g_counting = true;
  for (std::size_t i = 0; i < n; ++i) kept.push_back(make(i));
  g_counting = false;
  const double held = static_cast<double>(g_requested - g_freed);
  return {
      (count_sizeof ? static_cast<double>(sizeof(handle)) : 0.0) + held / static_cast<double>(n),
      static_cast<double>(g_allocations) / static_cast<double>(n)};
}

// Per entry of a container filled with `n` entries by add(container, i).
template <class Container, class Add>
usage per_entry(std::size_t n, Add add) {
  Container container;
  g_requested = g_freed = g_allocations = 0;
  g_counting = true;
  for (std::size_t i = 0; i < n; ++i) add(container, i);
  g_counting = false;
  return {static_cast<double>(g_requested - g_freed) / static_cast<double>(n),
          static_cast<double>(g_allocations) / static_cast<double>(n)};
}

std::string json(const usage& u) {
  char text[96];
  std::snprintf(text, sizeof text, "{\"bytes\": %.2f, \"allocations\": %.3f}", u.bytes,
                u.allocations);
  return text;
}

}  // namespace

int main() {
  constexpr std::size_t n = 100000;
  std::vector<std::pair<std::string, std::pair<usage, usage>>> rows;
  auto row = [&](const char* key, usage ours, usage base) { rows.push_back({key, {ours, base}}); };

  // Objects: the whole block (control block + object), so no sizeof(shared_ptr).
  row("object.int",
      per_instance(
          n, [](std::size_t) { return weakref::make_shared<int>(); }, false),
      per_instance(
          n, [](std::size_t) { return std::make_shared<int>(); }, false));
  row("object.bytes64",
      per_instance(
          n, [](std::size_t) { return weakref::make_shared<bytes64>(); }, false),
      per_instance(
          n, [](std::size_t) { return std::make_shared<bytes64>(); }, false));

  row("object.node16",
      per_instance(
          n, [](std::size_t) { return weakref::make_shared<node16>(); }, false),
      per_instance(
          n, [](std::size_t) { return std::make_shared<node16>(); }, false));
  row("object.tracked",
      per_instance(
          n, [](std::size_t) { return weakref::make_shared<tracked16>(); }, false),
      per_instance(
          n, [](std::size_t) { return std::make_shared<tracked16>(); }, false));

  // Handles to objects that already exist.
  std::vector<std::shared_ptr<item>> ours, theirs;
  for (std::size_t i = 0; i < n; ++i) {
    ours.push_back(weakref::make_shared<item>(i));
    theirs.push_back(std::make_shared<item>(i));
  }
  auto weak = [&](std::size_t i) { return std::weak_ptr<item>(theirs[i]); };
  row("ref.first", per_instance(n, [&](std::size_t i) { return weakref::ref<item>(ours[i]); }),
      per_instance(n, weak));
  {
    weakref::ref<item> canonical(ours[0]);
    row("ref.more", per_instance(n, [&](std::size_t) { return weakref::ref<item>(ours[0]); }),
        per_instance(n, [&](std::size_t) { return std::weak_ptr<item>(theirs[0]); }));
  }
  row("ref.callback",
      per_instance(n, [&](std::size_t i) { return weakref::ref<item>(ours[i], [] {}); }),
      per_instance(n, weak));
  row("proxy.first", per_instance(n, [&](std::size_t i) { return weakref::proxy<item>(ours[i]); }),
      per_instance(n, weak));
  struct weak_ptr_and_method {
    std::weak_ptr<item> object;
    void (item::*method)(std::uint64_t&) const noexcept;
  };
  row("weak_method",
      per_instance(n, [&](std::size_t i) { return weakref::weak_method(ours[i], &item::notify); }),
      per_instance(n, [&](std::size_t i) {
        return weak_ptr_and_method{theirs[i], &item::notify};
      }));
  row("finalize",
      per_instance(n,
                   [&](std::size_t i) {
                     return weakref::finalize(
                         ours[i], [](std::size_t) {}, i);
                   }),
      per_instance(n, [&](std::size_t i) { return std::function<void()>([i] { (void)i; }); }));

  // Container entries (the objects exist already).
  row("weak_value_map.entry",
      per_entry<weakref::weak_value_map<int, item>>(
          n, [&](auto& c, std::size_t i) { c.try_emplace(key_of(i), ours[i]); }),
      per_entry<std::unordered_map<int, std::weak_ptr<item>>>(
          n, [&](auto& c, std::size_t i) { c.try_emplace(key_of(i), theirs[i]); }));
  row("weak_key_map.entry",
      per_entry<weakref::weak_key_map<item, std::uint64_t>>(
          n, [&](auto& c, std::size_t i) { c.try_emplace(ours[i], i); }),
      per_entry<std::map<std::weak_ptr<item>, std::uint64_t, std::owner_less<>>>(
          n, [&](auto& c, std::size_t i) { c.try_emplace(theirs[i], i); }));
  row("weak_set.entry",
      per_entry<weakref::weak_set<item>>(n, [&](auto& c, std::size_t i) { c.insert(ours[i]); }),
      per_entry<std::vector<std::weak_ptr<item>>>(
          n, [&](auto& c, std::size_t i) { c.push_back(theirs[i]); }));

  std::printf("{\"n\": %zu, \"rows\": [\n", n);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& [key, sides] = rows[i];
    std::printf("  {\"key\": \"%s\", \"ours\": %s, \"base\": %s}%s\n", key.c_str(),
                json(sides.first).c_str(), json(sides.second).c_str(),
                i + 1 < rows.size() ? "," : "");
  }
  std::printf("]}\n");
  return 0;
}
