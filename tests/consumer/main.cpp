// Smallest possible weakref user: checks that a consumer can find, include and link weakref.
#include <weakref/weakref.hpp>

int main() {
  auto p = weakref::make_shared<int>(42);
  weakref::ref<int> r(p);
  return (r.lock() && *r.lock() == 42) ? 0 : 1;
}
