// The second translation unit of weak_set_odr_test: what it sees of the header-only library
// must be the very entities the first one sees.
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_set.hpp"

const void* same_object_in_second_tu() { return &weakref::detail::same_object; }

bool second_tu_contains(const weakref::weak_set<int>& s, const std::shared_ptr<int>& p) {
  return s.contains(p);
}
