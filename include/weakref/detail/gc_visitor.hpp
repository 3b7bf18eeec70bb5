// weakref/detail/gc_visitor.hpp — weakref::gc::visitor, what a tracked type's traverse is
// called with, and the test for "tracked": a type with traverse.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <optional>
#include <ranges>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "weakref/detail/gc_registry.hpp"
#include "weakref/detail/handle_access.hpp"
#include "weakref/detail/object_header.hpp"

namespace weakref {
class finalize;
}

namespace weakref::detail {

// What a collection does with the edges a traverse reports (one per pass of the collector).
class gc_edge_sink {
 public:
  // A strong edge to a tracked object.
  virtual void strong(object_header& target, std::string_view name) = 0;
  // A weak reference handle (ref, proxy, weak_method, container entry) held by the object.
  virtual void weak(weakref_node& /*node*/) {}

 protected:
  ~gc_edge_sink() = default;
};

template <class T>
struct is_shared_ptr : std::false_type {};
template <class T>
struct is_shared_ptr<std::shared_ptr<T>> : std::true_type {};
template <class T>
struct is_weak_ptr : std::false_type {};
template <class T>
struct is_weak_ptr<std::weak_ptr<T>> : std::true_type {};
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_variant : std::false_type {};
template <class... T>
struct is_variant<std::variant<T...>> : std::true_type {};

template <class T>
concept tuple_like = requires {
  std::tuple_size<T>::value;
};

class gc_collector;

template <class T, class V>
concept has_member_traverse = requires(T& t, V& v) {
  t.traverse(v);
};
template <class T, class V>
concept has_free_traverse = requires(T& t, V& v) {
  traverse(t, v);
};

}  // namespace weakref::detail

namespace weakref::gc {

// weakref::gc::visitor
//
// What collect() passes to a tracked type's traverse. Call it once per member that holds
// references, optionally with a name for the edge (introspection shows it):
//
//   template <class V> void traverse(V& visit) { visit(next); visit("children", children); }
//
// It accepts std::shared_ptr (a strong edge), std::weak_ptr, weakref::ref / proxy /
// weak_method / finalize (weak edges), the three weak containers, any type with its own
// traverse, and std ranges (vector, map, ...), std::optional, std::pair, std::tuple and
// std::variant of those, nested; scalars (raw pointers included: they own nothing) and ranges
// of scalars are ignored. Anything else does not compile.
//
// NOTE: collect() also uses traverse to break garbage cycles: it resets every shared_ptr it
// visits and clears every container it visits (edges or not: a garbage object's destructor
// finds its visited members already released), so visit members as non-const lvalues. An
// edge reached only through const (a const member, a container visited as const, a traverse
// declared const, or elements you iterate yourself as const) is counted but cannot be released:
// a garbage cycle held only by such edges is not freed (collection_info::uncollectable).
// NOTE: any member template named traverse that accepts this visitor makes its type tracked.
class visitor {
 public:
  template <class E>
  void operator()(E& edge) {
    visit(edge);
  }
  template <class E>
  void operator()(std::string_view name, E& edge) {
    auto outer = std::exchange(name_, name);
    visit(edge);
    name_ = outer;
  }

  // For the weak containers: each entry is a weak reference the container holds.
  void weakref_gc_weak_(detail::weakref_node& entry) {
    if (mode_ == mode::count) sink_->weak(entry);
  }

 private:
  friend class detail::gc_collector;
  enum class mode : unsigned char { count, clear };

  visitor(mode m, detail::gc_edge_sink* sink) noexcept : mode_(m), sink_(sink) {}

  template <class E>
  void visit(E& edge) {
    using plain = std::remove_cv_t<E>;
    constexpr bool writable = !std::is_const_v<E>;
    if constexpr (std::is_scalar_v<plain>) {
      // owns nothing
    } else if constexpr (detail::is_shared_ptr<plain>::value) {
      if (mode_ == mode::clear) {
        if constexpr (writable) edge.reset();
      } else if (edge) {
        auto* header = std::get_deleter<detail::object_header>(edge);
        if (header && header->tracked()) sink_->strong(*header, name_);
      }
    } else if constexpr (detail::is_weak_ptr<plain>::value || std::is_same_v<plain, finalize>) {
      // A weak edge the collector has nothing to do with: std::weak_ptr has no callback, and
      // a finalize runs whoever holds it (CPython keeps finalizers in a registry).
    } else if constexpr (requires { detail::handle_access::node_of(edge); }) {
      if (auto* node = detail::handle_access::node_of(edge); node && mode_ == mode::count) {
        sink_->weak(*node);
      }
    } else if constexpr (requires { edge.weakref_gc_traverse_(*this); }) {  // weak containers
      if constexpr (writable) {
        if (mode_ == mode::clear) return edge.clear();
      }
      if (mode_ == mode::count) edge.weakref_gc_traverse_(*this);
    } else if constexpr (detail::has_member_traverse<E, visitor>) {
      edge.traverse(*this);
    } else if constexpr (detail::has_free_traverse<E, visitor>) {
      traverse(edge, *this);
    } else if constexpr (detail::is_optional<plain>::value) {
      if (edge) visit(*edge);
    } else if constexpr (detail::is_variant<plain>::value) {
      std::visit([&](auto& alternative) { visit(alternative); }, edge);
    } else if constexpr (std::ranges::range<E>) {
      if constexpr (!std::is_scalar_v<std::ranges::range_value_t<E>>) {
        if constexpr (writable && requires { edge.clear(); }) {
          if (mode_ == mode::clear) return edge.clear();
        }
        for (auto& element : edge) visit(element);
      }
    } else if constexpr (detail::tuple_like<plain>) {
      std::apply([&](auto&... members) { (visit(members), ...); }, edge);
    } else {
      static_assert(sizeof(E) == 0,
                    "weakref::gc::visitor: this member type cannot be visited; visit its "
                    "std::shared_ptr members, or give the type a traverse of its own");
    }
  }

  mode mode_;
  detail::gc_edge_sink* sink_;
  std::string_view name_;
};

}  // namespace weakref::gc

namespace weakref::detail {

// A type the cycle collector tracks: it has a traverse member or a free traverse found by ADL.
template <class T>
concept is_traversable = has_member_traverse<T, gc::visitor> || has_free_traverse<T, gc::visitor>;

}  // namespace weakref::detail
