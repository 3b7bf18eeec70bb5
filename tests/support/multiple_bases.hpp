// support/multiple_bases.hpp — a class with two polymorphic bases, for the tests of base-class
// and aliasing pointers (include dir: tests/).
//
//   auto d = weakref::make_shared<multiple_bases::derived>(7);
//   std::shared_ptr<base_b> b = d;                  // a pointer that differs from d.get()
//   std::shared_ptr<base_b> alias(d, &d->inner);    // an aliasing pointer into the object
#pragma once

namespace multiple_bases {

struct base_a {
  virtual ~base_a() = default;
  int a = 1;
};
struct base_b {
  virtual ~base_b() = default;
  int b = 2;
};
// base_b sits at a non-zero offset, so converting pointers must adjust them.
struct derived : base_a, base_b {
  explicit derived(int v = 0) : value(v) {}
  int value;
  base_b inner;  // a subobject to alias
};

}  // namespace multiple_bases
