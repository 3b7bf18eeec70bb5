// weakref/detail/gc_inspect.hpp — the introspection queries (gc::get_referents, get_referrers,
// why_alive, explain_alive, to_dot, find_garbage): the collector's analysis, run to answer a
// question instead of to condemn.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#define WEAKREF_HAS_CXXABI 1
#else
#define WEAKREF_HAS_CXXABI 0
#endif

#include "weakref/detail/gc_collector.hpp"
#include "weakref/detail/gc_ephemeron.hpp"
#include "weakref/detail/gc_registry.hpp"
#include "weakref/detail/gc_visitor.hpp"
#include "weakref/detail/object_header.hpp"

namespace weakref::gc {

// One object on a retention chain (explain_alive) and the edge that holds it.
struct retention_link {
  std::shared_ptr<const void> object;
  std::string type;  // demangled
  // How the previous link holds this one: the member path its traverse names ("children[3]",
  // "mesh", "" for an unnamed edge), or "[value in weak_key_map<...>]" followed by the path
  // inside that value, for an edge from a weak_key_map's value whose key is the previous link.
  // Empty for the first link.
  std::string edge;
};

// Why an object is alive: the shortest chain of strong references to it from a root.
struct retention {
  // [root, ..., obj]. Just [obj]: obj itself has owners outside the tracked objects. Empty:
  // nothing but the query's argument and cycles keep it (the next collect() frees it).
  std::vector<retention_link> links;
  // The root's owners outside the tracked objects (not counting the query's argument); 0 when
  // the root is held by a value in a weak_key_map no tracked object owns (root_map names it).
  long root_owners = 0;
  std::string root_map;

  // e.g. "root (Scene) --children[3]--> Node --mesh--> Mesh"
  std::string str() const {
    if (links.empty()) {
      return "nothing but cycles (and the query's argument) keeps it alive: collect() frees it";
    }
    std::string out = "root (" + links.front().type;
    if (!root_map.empty()) out += ", in a value of " + root_map;
    out += ")";
    for (std::size_t i = 1; i < links.size(); ++i) {
      out += " --" + links[i].edge + "--> " + links[i].type;
    }
    return out;
  }
};

// What find_garbage() found: the objects a collect() would free now, with the strong edges
// between them, in groups that hold together (each a cycle and what hangs off it).
struct garbage_report {
  struct object {
    std::shared_ptr<const void> pointer;  // keeps it alive while the report lives
    std::string type;
  };
  struct edge {
    std::size_t from, to;  // indexes into objects
    std::string name;      // the member path, as in retention_link::edge
  };
  std::vector<object> objects;
  std::vector<edge> edges;
  std::vector<std::vector<std::size_t>> groups;  // indexes into objects, each group ascending

  bool empty() const noexcept { return objects.empty(); }
  // One line per edge, grouped:
  //   2 garbage objects in 1 group
  //   group 1: 2 objects
  //     #0 Node --next--> #1 Node
  //     #1 Node --next--> #0 Node
  std::string str() const;
  // The same as a Graphviz digraph, one cluster per group.
  std::string to_dot() const;
};

}  // namespace weakref::gc

namespace weakref::detail {

// A type's demangled name, without "(anonymous namespace)::" (noise in a retention chain), and
// with libc++'s inline namespace dropped (std::__1::shared_ptr reads std::shared_ptr, as with
// libstdc++).
inline std::string gc_type_name(const std::type_info& type) {
  std::string result = type.name();
#if WEAKREF_HAS_CXXABI
  int status = 0;
  char* name = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  if (status == 0 && name) result = name;
  std::free(name);
#endif
  // Erases `noise` after its first `keep` characters, everywhere.
  auto erase_all = [&result](std::string_view noise, std::size_t keep) {
    for (auto at = result.find(noise); at != std::string::npos;
         at = result.find(noise, at + keep)) {
      result.erase(at + keep, noise.size() - keep);
    }
  };
  erase_all("(anonymous namespace)::", 0);
  erase_all("std::__1::", 5);
  return result;
}

// Text for a quoted DOT label: quotes and backslashes escaped, newlines as DOT's \n.
inline std::string gc_dot_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// The owners a query's argument (a const std::shared_ptr<T>&) adds, which it discounts: the
// caller's, plus the std::shared_ptr<const void> the query binds it to, unless it is one.
template <class T>
inline constexpr long query_argument_owners = std::is_same_v<T, const void> ? 1 : 2;

template <class T>
const std::type_info& dynamic_type(const std::shared_ptr<T>& obj) noexcept {
  if constexpr (std::is_polymorphic_v<T>) {
    return typeid(*obj);
  } else {
    return typeid(T);
  }
}

class gc_inspector {
 public:
  using entry = gc_collector::entry;
  static constexpr std::uint32_t no_slot = gc_collector::no_slot;

  // f(edge, tracked header or null, member path) for each shared_ptr the object's traverse
  // visits.
  template <class F>
  struct each_reference final : gc_edge_sink {
    F* f;
    void reference(const gc_edge_ref& edge, object_header* tracked,
                   std::string_view path) override {
      (*f)(edge, tracked, path);
    }
  };
  // Counts the edges a seeking visitor finds.
  struct count_found final : gc_edge_sink {
    std::size_t found_here = 0;
    void found() override { ++found_here; }
  };
  // run(visitor) with an inspecting visitor that calls f for each reference.
  template <class F, class Run>
  static void inspect(F& f, Run run) {
    each_reference<F> sink;
    sink.f = &f;
    gc::visitor visit(gc::visitor::mode::inspect, &sink);
    run(visit);
  }
  template <class F>
  static void references_of(const gc_record& record, F f) {
    inspect(f, [&](gc::visitor& visit) { record.type->traverse(record.object(), visit); });
  }
  template <class F>
  static void references_of_value(gc_collector& run, std::uint32_t which, F f) {
    auto& eph = run.ephemerons_[which];
    inspect(f, [&](gc::visitor& visit) {
      run.tables_[eph.table].map->gc_visit_value(eph.position, visit);
    });
  }

  // get_referents(obj): f for each reference that traverse(visitor) shows, without the
  // collector's lock but flagged as a query's traverse is: a collect() from it returns 0, and a
  // query from it throws (it would run this traverse again, inside itself). The keys held to
  // read weak_key_map values are let go of after the flags are down: their deaths are ordinary.
  template <class Traverse, class F>
  static void referents(Traverse traverse, F f) {
    each_reference<F> sink;
    sink.f = &f;
    gc::visitor visit(gc::visitor::mode::inspect, &sink);
    {
      gc_busy_scope busy;
      struct collecting {
        bool outer = std::exchange(gc_collecting_here, true);
        ~collecting() { gc_collecting_here = outer; }
        collecting() = default;
        collecting(const collecting&) = delete;
        collecting& operator=(const collecting&) = delete;
      } flag;
      traverse(visit);
    }
    visit.let_go_of_held_keys();
  }

  // holder(slot, via) for each strong edge to `target`: from the tracked object at `slot` (via
  // is no_slot), or from the value of ephemeron `via` (slot is no_slot). (A seeking visitor: it
  // compares owners, without the inspecting visitor's paths and type erasure.)
  template <class F>
  static void for_each_holder(gc_collector& run, const std::shared_ptr<const void>& target,
                              F holder) {
    count_found sink;
    gc::visitor seeking(target, &sink);
    auto report = [&](std::uint32_t slot, std::uint32_t via) {
      for (; sink.found_here != 0; --sink.found_here) holder(slot, via);
    };
    for (std::uint32_t slot = 0; slot < run.snapshot_.size(); ++slot) {
      gc_collector::traverse(*run.snapshot_[slot].record, seeking);
      report(slot, no_slot);
    }
    for (std::uint32_t i = 0; i < run.ephemerons_.size(); ++i) {
      auto& eph = run.ephemerons_[i];
      run.tables_[eph.table].map->gc_visit_value(eph.position, seeking);
      report(no_slot, i);
    }
  }

  static std::string type_of(const entry& e) { return gc_type_name(*e.record->type->type); }
  static std::string map_name(gc_collector& run, std::uint32_t which) {
    return gc_type_name(run.tables_[run.ephemerons_[which].table].map->gc_map_type());
  }

  // The member path by which `holder` (a snapshot slot, or an ephemeron's value when `via` is
  // one) holds `target`; "?" if its traverse no longer shows it.
  static std::string edge_name(gc_collector& run, std::uint32_t holder, std::uint32_t via,
                               const std::shared_ptr<const void>& target) {
    std::string found = "?";
    bool done = false;
    auto match = [&](const gc_edge_ref& t, object_header*, std::string_view path) {
      if (!done && t.same_owner(target)) {
        found = std::string(path);
        done = true;
      }
    };
    if (via != no_slot) {
      references_of_value(run, via, match);
      auto value = "[value in " + map_name(run, via) + "]";
      return found.empty() ? value : value + "." + found;
    }
    references_of(*run.snapshot_[holder].record, match);
    return found;
  }

  // explain_alive(obj): `target` is the query's argument converted (`discount` owners: the
  // argument and the conversion's copy, when it made one); `type` its type if untracked.
  static gc::retention explain(const std::shared_ptr<const void>& target, long discount,
                               const std::type_info& type) {
    return gc_collector::query([&](gc_collector& run) {
      gc::retention result;
      auto* header = std::get_deleter<object_header>(target);
      if (header && header->tracked()) {
        auto* e = run.entry_of(*header);
        if (!e) return result;  // condemned: garbage already
        e->outside -= static_cast<std::int32_t>(discount);
        explain_tracked(run, run.slot_of(*e), result);
      } else {
        explain_untracked(run, target, discount, type, result);
      }
      return result;
    });
  }

  // get_referrers(obj): the tracked objects whose traverse shows a strong edge to `target`.
  static std::vector<std::shared_ptr<const void>> referrers(
      const std::shared_ptr<const void>& target) {
    std::vector<std::shared_ptr<const void>> result;
    count_found sink;
    gc::visitor seeking(target, &sink);
    gc_collector::for_each_held([&](const gc_record& record, std::shared_ptr<const void>& hold) {
      gc_collector::traverse(record, seeking);
      seeking.let_go_of_held_keys();
      if (std::exchange(sink.found_here, 0) != 0) result.push_back(std::move(hold));  // once
    });
    return result;
  }

  static std::string to_dot(const std::shared_ptr<const void>& target, long discount,
                            const std::type_info& type, std::size_t max_nodes);

  static gc::garbage_report find_garbage();

 private:
  static void prepare_parents(gc_collector& run) {
    run.parents_.assign(run.snapshot_.size(), no_slot);
    run.vias_.assign(run.snapshot_.size(), no_slot);
  }
  static std::vector<std::int32_t> outside_counts(const gc_collector& run) {
    std::vector<std::int32_t> counts(run.snapshot_.size());
    for (std::size_t i = 0; i < counts.size(); ++i) counts[i] = run.snapshot_[i].outside;
    return counts;
  }

  // The chain of parents from a root to `slot`, root first.
  static std::vector<std::uint32_t> chain_to(const gc_collector& run, std::uint32_t slot) {
    std::vector<std::uint32_t> chain;
    for (auto s = slot; s != no_slot; s = run.parents_[s]) chain.push_back(s);
    std::reverse(chain.begin(), chain.end());
    return chain;
  }

  static void fill_links(gc_collector& run, const std::vector<std::uint32_t>& chain,
                         const std::vector<std::int32_t>& outside, gc::retention& result) {
    for (std::size_t i = 0; i < chain.size(); ++i) {
      auto& e = run.snapshot_[chain[i]];
      std::string edge;
      if (i > 0) edge = edge_name(run, chain[i - 1], run.vias_[chain[i]], e.hold);
      result.links.push_back(gc::retention_link{e.hold, type_of(e), std::move(edge)});
    }
    auto root = chain.front();
    if (auto via = run.vias_[root]; via != no_slot) {
      result.root_map = map_name(run, via);
    } else {
      result.root_owners = outside[root];
    }
  }

  static void explain_tracked(gc_collector& run, std::uint32_t slot, gc::retention& result) {
    auto outside = outside_counts(run);
    prepare_parents(run);
    run.mark_from_roots(slot);
    if (run.snapshot_[slot].outside != entry::reached) return;
    fill_links(run, chain_to(run, slot), outside, result);
  }

  static void explain_untracked(gc_collector& run, const std::shared_ptr<const void>& target,
                                long discount, const std::type_info& type, gc::retention& result) {
    // Who in the tracked graph holds it: objects (via == no_slot) and ephemeron values.
    struct holder {
      std::uint32_t slot, via;
    };
    std::vector<holder> holders;
    for_each_holder(run, target, [&](std::uint32_t slot, std::uint32_t via) {
      holders.push_back(holder{slot, via});
    });
    auto owners = target.use_count() - discount - static_cast<long>(holders.size());
    if (owners > 0) {
      result.links.push_back(gc::retention_link{target, gc_type_name(type), {}});
      result.root_owners = owners;
      return;
    }
    auto outside = outside_counts(run);
    prepare_parents(run);
    run.mark_from_roots(no_slot);
    std::vector<std::size_t> order(run.snapshot_.size(), 0);
    for (std::size_t i = 0; i < run.work_.size(); ++i) order[run.work_[i]] = i + 1;
    // The holder reached first (breadth first: the shortest chain), and from where.
    const holder* best = nullptr;
    std::size_t best_rank = 0;
    for (auto& h : holders) {
      std::uint32_t from = h.via == no_slot ? h.slot : run.ephemerons_[h.via].from;
      bool reached = h.via == no_slot ? run.snapshot_[h.slot].outside == entry::reached
                                      : run.ephemerons_[h.via].fired;
      if (!reached) continue;
      auto rank = from == no_slot ? 0 : order[from];
      if (!best || rank < best_rank) {
        best = &h;
        best_rank = rank;
      }
    }
    if (!best) return;
    std::uint32_t from = best->via == no_slot ? best->slot : run.ephemerons_[best->via].from;
    if (from != no_slot) fill_links(run, chain_to(run, from), outside, result);
    auto edge = edge_name(run, from, best->via, target);
    if (from == no_slot) result.root_map = map_name(run, best->via);
    result.links.push_back(gc::retention_link{target, gc_type_name(type), std::move(edge)});
  }
};

// The objects that hold `target` (up to max_nodes, nearest first), the edges among them, the
// roots marked and the why_alive chain drawn bold.
inline std::string gc_inspector::to_dot(const std::shared_ptr<const void>& target, long discount,
                                        const std::type_info& type, std::size_t max_nodes) {
  return gc_collector::query([&](gc_collector& run) {
    auto n = static_cast<std::uint32_t>(run.snapshot_.size());
    // Nodes: snapshot slots; n: the target when it is untracked; n + 1 + t: weak_key_map t
    // (when a value of a map no tracked object owns holds something).
    struct edge {
      std::uint32_t from, to, via;
    };
    std::vector<edge> edges;
    struct record_edges final : gc_edge_sink {
      gc_collector* run;
      std::vector<edge>* edges;
      std::uint32_t from = no_slot, via = no_slot;
      void strong(object_header& t, std::string_view) override {
        if (auto* e = run->entry_of(t)) edges->push_back(edge{from, run->slot_of(*e), via});
      }
    } sink;
    sink.run = &run;
    sink.edges = &edges;
    gc::visitor counting(gc::visitor::mode::count, &sink);
    for (std::uint32_t slot = 0; slot < n; ++slot) {
      sink.from = slot;
      gc_collector::traverse(*run.snapshot_[slot].record, counting);
    }
    auto value_holder = [&](std::uint32_t which) {
      auto key = run.ephemerons_[which].key;
      return key < n ? key : n + 1 + run.ephemerons_[which].table;
    };
    for (std::uint32_t i = 0; i < run.ephemerons_.size(); ++i) {
      sink.from = value_holder(i);
      sink.via = i;
      auto& eph = run.ephemerons_[i];
      run.tables_[eph.table].map->gc_visit_value(eph.position, counting);
    }

    auto* header = std::get_deleter<object_header>(target);
    std::uint32_t node = n;
    if (header && header->tracked()) {
      auto* e = run.entry_of(*header);
      if (!e) return std::string("digraph retention {\n  // condemned: garbage already\n}\n");
      node = run.slot_of(*e);
      e->outside -= static_cast<std::int32_t>(discount);
    } else {
      for_each_holder(run, target, [&](std::uint32_t slot, std::uint32_t via) {
        edges.push_back(edge{via == no_slot ? slot : value_holder(via), n, via});
      });
    }
    long target_owners = 0;
    if (node == n) {
      target_owners = target.use_count() - discount;
      for (auto& e : edges) target_owners -= e.to == n;
    }

    // Holders, breadth first from the target along reversed edges.
    std::vector<std::uint32_t> shown{node};
    std::vector<char> seen(n + 1 + run.tables_.size(), 0);
    seen[node] = 1;
    bool truncated = false;
    for (std::size_t head = 0; head < shown.size(); ++head) {
      for (auto& e : edges) {
        if (e.to != shown[head] || seen[e.from]) continue;
        if (shown.size() >= max_nodes) {
          truncated = true;
          continue;
        }
        seen[e.from] = 1;
        shown.push_back(e.from);
      }
    }

    auto outside = outside_counts(run);
    prepare_parents(run);
    run.mark_from_roots(node < n ? node : no_slot);
    std::vector<std::pair<std::uint32_t, std::uint32_t>> chain_edges;
    if (node < n && run.snapshot_[node].outside == entry::reached) {
      auto chain = chain_to(run, node);
      for (std::size_t i = 1; i < chain.size(); ++i)
        chain_edges.emplace_back(chain[i - 1], chain[i]);
      for (auto s : chain) {
        if (!seen[s]) {
          seen[s] = 1;
          shown.push_back(s);
        }
      }
    }

    auto id = [&](std::uint32_t v) {
      if (v < n) return "n" + std::to_string(v);
      if (v == n) return std::string("target");
      return "map" + std::to_string(v - n - 1);
    };
    std::string dot =
        "digraph retention {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n"
        "  edge [fontname=\"monospace\", fontsize=10];\n";
    for (auto v : shown) {
      std::string label, style;
      if (v < n) {
        label = type_of(run.snapshot_[v]);
        if (outside[v] > 0) {
          label += "\nroot: " + std::to_string(outside[v]) + " outside owner" +
                   (outside[v] == 1 ? "" : "s");
          style = ", peripheries=2, style=filled, fillcolor=\"#ffe0b0\"";
        }
      } else if (v == n) {
        label = gc_type_name(type);
        if (target_owners > 0)
          label += "\nroot: " + std::to_string(target_owners) + " outside owners";
      } else {
        label = gc_type_name(run.tables_[v - n - 1].map->gc_map_type()) + "\n(no tracked owner)";
        style = ", shape=folder, peripheries=2, style=filled, fillcolor=\"#ffe0b0\"";
      }
      if (v == node) {
        label += "\n(queried)";
        style += ", style=\"filled,bold\", fillcolor=\"#cfe3ff\"";
      }
      dot += "  " + id(v) + " [label=\"" + gc_dot_escape(label) + "\"" + style + "];\n";
    }
    std::vector<std::pair<std::uint32_t, std::uint32_t>> drawn;
    for (auto& e : edges) {
      if (!seen[e.from] || !seen[e.to]) continue;
      if (std::find(drawn.begin(), drawn.end(), std::pair(e.from, e.to)) != drawn.end()) continue;
      drawn.emplace_back(e.from, e.to);
      auto& to = e.to < n ? run.snapshot_[e.to].hold : target;
      std::string name;
      if (e.via != no_slot) {
        name = edge_name(run, no_slot, e.via, to);
      } else {
        name = edge_name(run, e.from, no_slot, to);
      }
      bool on_chain = std::find(chain_edges.begin(), chain_edges.end(), std::pair(e.from, e.to)) !=
                      chain_edges.end();
      dot += "  " + id(e.from) + " -> " + id(e.to) + " [label=\"" + gc_dot_escape(name) + "\"";
      if (e.via != no_slot) dot += ", style=dashed";
      if (on_chain) dot += ", color=\"#d04000\", penwidth=2";
      dot += "];\n";
    }
    if (truncated) {
      dot += "  more [shape=plaintext, label=\"(more holders not shown)\"];\n";
    }
    dot += "}\n";
    return dot;
  });
}

inline gc::garbage_report gc_inspector::find_garbage() {
  return gc_collector::query([&](gc_collector& run) {
    gc::garbage_report report;
    run.mark_from_roots(no_slot);
    auto n = run.snapshot_.size();
    std::vector<std::size_t> index(n, static_cast<std::size_t>(-1));
    for (std::size_t slot = 0; slot < n; ++slot) {
      auto& e = run.snapshot_[slot];
      if (e.outside == entry::reached) continue;
      index[slot] = report.objects.size();
      report.objects.push_back(gc::garbage_report::object{e.hold, type_of(e)});
    }
    auto add_edges = [&](std::size_t from, auto&& visit_references) {
      visit_references([&](const gc_edge_ref&, object_header* tracked, std::string_view path) {
        auto* to = tracked ? run.entry_of(*tracked) : nullptr;
        if (!to || index[run.slot_of(*to)] == static_cast<std::size_t>(-1)) return;
        report.edges.push_back(
            gc::garbage_report::edge{from, index[run.slot_of(*to)], std::string(path)});
      });
    };
    for (std::size_t slot = 0; slot < n; ++slot) {
      if (index[slot] == static_cast<std::size_t>(-1)) continue;
      add_edges(index[slot],
                [&](auto f) { references_of(*run.snapshot_[slot].record, std::move(f)); });
    }
    for (std::uint32_t i = 0; i < run.ephemerons_.size(); ++i) {  // from a garbage key's value
      auto key = run.ephemerons_[i].key;
      if (key >= n || index[key] == static_cast<std::size_t>(-1)) continue;
      auto first = report.edges.size();
      add_edges(index[key], [&](auto f) { references_of_value(run, i, std::move(f)); });
      for (auto j = first; j < report.edges.size(); ++j) {
        auto& name = report.edges[j].name;
        name = "[value in " + map_name(run, i) + "]" + (name.empty() ? "" : "." + name);
      }
    }
    // Groups: the connected components of the garbage's edges (union-find).
    std::vector<std::size_t> parent(report.objects.size());
    std::iota(parent.begin(), parent.end(), std::size_t{0});
    auto find = [&](std::size_t x) {
      while (parent[x] != x) x = parent[x] = parent[parent[x]];
      return x;
    };
    for (auto& e : report.edges) parent[find(e.from)] = find(e.to);
    std::vector<std::size_t> group_of(report.objects.size(), static_cast<std::size_t>(-1));
    for (std::size_t i = 0; i < report.objects.size(); ++i) {
      auto& g = group_of[find(i)];
      if (g == static_cast<std::size_t>(-1)) {
        g = report.groups.size();
        report.groups.emplace_back();
      }
      report.groups[g].push_back(i);
    }
    return report;
  });
}

}  // namespace weakref::detail

namespace weakref::gc {

inline std::string garbage_report::str() const {
  auto label = [&](std::size_t i) { return "#" + std::to_string(i) + " " + objects[i].type; };
  std::string out = std::to_string(objects.size()) + " garbage object" +
                    (objects.size() == 1 ? "" : "s") + " in " + std::to_string(groups.size()) +
                    " group" + (groups.size() == 1 ? "" : "s") + "\n";
  for (std::size_t g = 0; g < groups.size(); ++g) {
    out += "group " + std::to_string(g + 1) + ": " + std::to_string(groups[g].size()) + " object" +
           (groups[g].size() == 1 ? "" : "s") + "\n";
    for (auto i : groups[g]) {
      bool any = false;
      for (auto& e : edges) {
        if (e.from != i) continue;
        out += "  " + label(i) + " --" + e.name + "--> " + label(e.to) + "\n";
        any = true;
      }
      if (!any) out += "  " + label(i) + "\n";
    }
  }
  return out;
}

inline std::string garbage_report::to_dot() const {
  std::string dot =
      "digraph garbage {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n"
      "  edge [fontname=\"monospace\", fontsize=10];\n";
  for (std::size_t g = 0; g < groups.size(); ++g) {
    dot += "  subgraph cluster_" + std::to_string(g) + " {\n    label=\"group " +
           std::to_string(g + 1) + "\";\n";
    for (auto i : groups[g]) {
      dot += "    n" + std::to_string(i) + " [label=\"#" + std::to_string(i) + " " +
             detail::gc_dot_escape(objects[i].type) + "\"];\n";
    }
    dot += "  }\n";
  }
  for (auto& e : edges) {
    dot += "  n" + std::to_string(e.from) + " -> n" + std::to_string(e.to) + " [label=\"" +
           detail::gc_dot_escape(e.name) + "\"];\n";
  }
  return dot + "}\n";
}

}  // namespace weakref::gc
