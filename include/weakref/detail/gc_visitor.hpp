// weakref/detail/gc_visitor.hpp — weakref::gc::visitor, what a tracked type's traverse is
// called with, and the test for "tracked": a type with traverse.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>
#include <vector>

#include "weakref/detail/gc_ephemeron.hpp"
#include "weakref/detail/gc_registry.hpp"
#include "weakref/detail/handle_access.hpp"
#include "weakref/detail/header_lookup.hpp"
#include "weakref/detail/object_header.hpp"

namespace weakref {
class finalize;
}

namespace weakref::detail {

// A shared_ptr an inspecting traverse met, whatever its type: copying it (two atomic
// operations) and comparing owners only when asked.
class gc_edge_ref {
 public:
  template <class P>
  explicit gc_edge_ref(const P& edge) noexcept
      : edge_(&edge),
        copy_(
            [](const void* e) -> std::shared_ptr<const void> { return *static_cast<const P*>(e); }),
        same_owner_([](const void* e, const std::shared_ptr<const void>& other) noexcept {
          auto& p = *static_cast<const P*>(e);
          return !p.owner_before(other) && !other.owner_before(p);
        }),
        type_([](const void* e) noexcept -> const std::type_info& {
          using T = typename P::element_type;
          if constexpr (std::is_polymorphic_v<T>) {
            return typeid(**static_cast<const P*>(e));
          } else {
            return typeid(T);
          }
        }) {}

  std::shared_ptr<const void> copy() const { return copy_(edge_); }
  bool same_owner(const std::shared_ptr<const void>& other) const noexcept {
    return same_owner_(edge_, other);
  }
  // The pointee's type: its dynamic type when polymorphic.
  const std::type_info& type() const noexcept { return type_(edge_); }

 private:
  const void* edge_;
  std::shared_ptr<const void> (*copy_)(const void*);
  bool (*same_owner_)(const void*, const std::shared_ptr<const void>&) noexcept;
  const std::type_info& (*type_)(const void*) noexcept;
};

// What a collection or a query does with the edges a traverse reports (one per pass).
class gc_edge_sink {
 public:
  // Counting: a strong edge to a tracked object.
  virtual void strong(object_header& /*target*/, std::string_view /*name*/) {}
  // Counting: a weak reference handle (ref, proxy, weak_method, container entry) held.
  virtual void weak(weakref_node& /*node*/) {}
  // Counting: a weak_key_map with traversable values held; its values are not visited (their
  // edges are ephemerons: the collector visits them itself, entry by entry).
  virtual void table(gc_ephemeron_table& /*map*/, gc::visitor& /*visit*/) {}
  // Stealing: room for one more strong edge (moved out by steal, released by the caller).
  virtual bool room() noexcept { return false; }
  virtual void steal(std::shared_ptr<const void>&& /*edge*/) noexcept {}
  // Inspecting: every non-null shared_ptr, tracked or not, with the path of member names to it.
  virtual void reference(const gc_edge_ref& /*edge*/, object_header* /*tracked*/,
                         std::string_view /*path*/) {}
  // Seeking: a shared_ptr that shares ownership with the one sought.
  virtual void found() {}

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
class gc_inspector;

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
// NOTE: collect() also uses traverse to break garbage cycles: it empties every shared_ptr it
// visits and clears every container it visits (edges or not: a garbage object's destructor
// finds its visited members already released), so visit members as non-const lvalues. What a
// shared_ptr held is let go of after the traverse returns, outside any lock it takes (ordered
// node containers' elements are extracted, so set elements and map keys too); container
// elements themselves (a struct in a vector, a weak_value_map's keys), and an unordered
// container's const elements and keys, are destroyed inside it. An
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
    visit_named(name, edge);
  }

  // For the weak containers: each entry is a weak reference the container holds.
  void weakref_gc_weak_(detail::weakref_node& entry) {
    if (mode_ == mode::count) sink_->weak(entry);
  }
  // For the weak containers: keeps a key held while its value is read until the traverse has
  // returned. Letting go of it there could run its destructor, callbacks and finalizers inside
  // the traverse, under whatever lock the traverse takes.
  // Room first (it may throw), so that a key once locked is always kept.
  void weakref_gc_room_for_key_() { detail::reserve_one(held_keys_); }
  void weakref_gc_hold_key_(std::shared_ptr<const void>&& key) noexcept {
    held_keys_.push_back(std::move(key));
  }
  // For the weak containers: the value at position `i` of their entries.
  template <class E>
  void weakref_gc_element_(std::size_t i, E& element) {
    if (mode_ != mode::inspect) return visit(element);
    auto outer = path_.size();
    path_ += '[';
    path_ += std::to_string(i);
    path_ += ']';
    visit(element);
    path_.resize(outer);
  }

 private:
  friend class detail::gc_collector;
  friend class detail::gc_inspector;
  // seek: as inspect (every shared_ptr, in weak containers' values too), but only compares
  // owners with `sought_`, without naming paths.
  enum class mode : unsigned char { count, clear, steal, inspect, seek };

  visitor(mode m, detail::gc_edge_sink* sink) noexcept : mode_(m), sink_(sink) {}
  visitor(const std::shared_ptr<const void>& sought, detail::gc_edge_sink* sink) noexcept
      : mode_(mode::seek), sink_(sink), sought_(&sought) {}

  template <class E>
  void visit_shared_ptr(E& edge) {
    if (mode_ == mode::clear) {
      if constexpr (!std::is_const_v<E>) clear_edge(edge);
      return;
    }
    if (!edge) return;
    ++shared_seen_;  // (counting: the room clearing may need)
    if (mode_ == mode::seek) {
      if (!edge.owner_before(*sought_) && !sought_->owner_before(edge)) sink_->found();
      return;
    }
    auto* header = detail::find_header(edge);
    bool tracked = header && header->tracked();
    if (mode_ == mode::count) {
      if (tracked) sink_->strong(*header, name_);
    } else if (mode_ == mode::inspect) {
      sink_->reference(detail::gc_edge_ref(edge), tracked ? header : nullptr, path_);
    } else if constexpr (!std::is_const_v<E>) {  // steal
      if (tracked && sink_->room()) sink_->steal(std::shared_ptr<const void>(std::move(edge)));
    }
  }

  // Clearing: the edge leaves the member now, and goes to the collector, which lets go of it
  // once the traverse has returned: a destructor that letting go runs may take a lock the
  // traverse holds (rule (1) in gc.hpp). Reset here only when the collector has no room left.
  template <class E>
  void clear_edge(E& edge) noexcept {
    if (!edge) return;
    if (taken_ && (taken_->size() < taken_->capacity() || grow_taken())) {
      taken_->emplace_back(std::move(edge));
    } else {
      edge.reset();
    }
  }
  [[gnu::noinline]] bool grow_taken() noexcept {
    try {
      detail::reserve_one(*taken_);
      return true;
    } catch (...) {
      return false;
    }
  }

  // Clearing a range: its elements' edges out first (an ordered node container's elements are
  // taken out of it, as sets' elements and maps' keys are const in place; not an unordered
  // one's: extracting may hash, and a hash may read members already cleared), then what is left
  // is destroyed.
  template <class R>
  void clear_range(R& range) {
    constexpr bool ordered_nodes = requires { typename R::key_compare; };
    try {
      if constexpr (ordered_nodes && requires { range.extract(range.begin()).key(); }) {
        while (!range.empty()) {
          auto node = range.extract(range.begin());
          visit(node.key());
          visit(node.mapped());
        }
      } else if constexpr (ordered_nodes && requires { range.extract(range.begin()).value(); }) {
        while (!range.empty()) visit(range.extract(range.begin()).value());
      } else {
        for (auto& element : range) visit(element);
      }
    } catch (...) {
      range.clear();  // an element's traverse threw: the rest goes in place
      throw;
    }
    range.clear();
  }

  template <class E>
  void visit_named(std::string_view name, E& edge) {
    if (mode_ != mode::inspect) {
      auto outer = std::exchange(name_, name);
      visit(edge);
      name_ = outer;
      return;
    }
    auto outer = path_.size();
    if (outer != 0 && !name.empty()) path_ += '.';
    path_ += name;
    visit(edge);
    path_.resize(outer);
  }

  template <class E>
  void visit(E& edge) {
    using plain = std::remove_cv_t<E>;
    constexpr bool writable = !std::is_const_v<E>;
    if constexpr (std::is_scalar_v<plain>) {
      // owns nothing
    } else if constexpr (detail::is_shared_ptr<plain>::value) {
      visit_shared_ptr(edge);
    } else if constexpr (detail::is_weak_ptr<plain>::value || std::is_same_v<plain, finalize>) {
      // A weak edge the collector has nothing to do with: std::weak_ptr has no callback, and
      // a finalize runs whoever holds it (CPython keeps finalizers in a registry).
    } else if constexpr (requires { detail::handle_access::node_of(edge); }) {
      if (auto* node = detail::handle_access::node_of(edge); node && mode_ == mode::count) {
        sink_->weak(*node);
      }
    } else if constexpr (requires(plain & c) { c.weakref_gc_traverse_(*this, true); }) {
      // A weak container. Stealing takes edges out of values without running destructors: a
      // container's entries are left to it. Counting and inspecting change nothing, so a const
      // one is read as any other (its edges are counted, and never released).
      auto& container = const_cast<plain&>(edge);
      if constexpr (writable) {
        if (mode_ == mode::clear) {
          container.weakref_gc_traverse_(*this, true);  // the values' edges out first
          return edge.clear();
        }
      }
      if (mode_ == mode::clear || mode_ == mode::steal) return;
      if constexpr (requires { container.weakref_gc_ephemerons_(); }) {
        if (mode_ == mode::count) {
          container.weakref_gc_traverse_(*this, false);
          return sink_->table(container.weakref_gc_ephemerons_(), *this);
        }
        // Inspecting or seeking. Without the maps' lock (get_referents, get_referrers' walk), a
        // collection may be moving edges out of dead keys' values: hold each key while reading.
        // (Under it, nothing is moved, and a key let go could die under the collector's locks.)
        return container.weakref_gc_traverse_(*this, true, !detail::gc_maps_walked_here);
      }
      container.weakref_gc_traverse_(*this, true);
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
          if (mode_ == mode::clear) return clear_range(edge);
        }
        if (mode_ != mode::inspect) {
          for (auto& element : edge) visit(element);
          return;
        }
        std::size_t i = 0;
        for (auto& element : edge) weakref_gc_element_(i++, element);
      }
    } else if constexpr (detail::tuple_like<plain>) {
      std::apply([&](auto&... members) { (visit(members), ...); }, edge);
    } else {
      static_assert(sizeof(E) == 0,
                    "weakref::gc::visitor: this member type cannot be visited; visit its "
                    "std::shared_ptr members, or give the type a traverse of its own");
    }
  }

  // After a traverse has returned (outside its locks): the keys weakref_gc_hold_key_ kept.
  void let_go_of_held_keys() noexcept { held_keys_.clear(); }

  mode mode_;
  detail::gc_edge_sink* sink_;
  std::vector<std::shared_ptr<const void>> held_keys_;
  std::vector<std::shared_ptr<const void>>* taken_ = nullptr;  // clearing: the edges taken out
  std::size_t shared_seen_ = 0;  // non-null shared_ptrs visited, tracked or not
  std::string_view name_;        // counting: the name of the member being visited
  std::string path_;             // inspecting: the names from the object to the member, "a.b[2]"
  const std::shared_ptr<const void>* sought_ = nullptr;  // seeking
};

}  // namespace weakref::gc

namespace weakref::detail {

// A type the cycle collector tracks: it has a traverse member or a free traverse found by ADL.
template <class T>
concept is_traversable = has_member_traverse<T, gc::visitor> || has_free_traverse<T, gc::visitor>;

// Whether a value of type T can hold a strong edge the visitor would report (a weak_key_map
// whose values can is a table of ephemerons).
template <class T>
constexpr bool gc_holds_edges() {
  using plain = std::remove_cv_t<T>;
  if constexpr (std::is_scalar_v<plain> || is_weak_ptr<plain>::value) {
    return false;
  } else if constexpr (is_shared_ptr<plain>::value || is_traversable<plain>) {
    return true;
  } else if constexpr (requires(plain & t) { handle_access::node_of(t); }) {
    return false;  // ref, proxy, weak_method
  } else if constexpr (is_optional<plain>::value) {
    return gc_holds_edges<typename plain::value_type>();
  } else if constexpr (is_variant<plain>::value) {
    return []<class... A>(std::variant<A...>*) {
      return (gc_holds_edges<A>() || ...);
    }(static_cast<plain*>(nullptr));
  } else if constexpr (std::ranges::range<plain>) {
    return gc_holds_edges<std::ranges::range_value_t<plain>>();
  } else if constexpr (tuple_like<plain>) {
    return []<std::size_t... I>(std::index_sequence<I...>) {
      return (gc_holds_edges<std::tuple_element_t<I, plain>>() || ...);
    }
    (std::make_index_sequence<std::tuple_size_v<plain>>());
  } else {
    return false;
  }
}

}  // namespace weakref::detail
