// weakref/detail/table_node.hpp — an entry of a weak container's table (weak_table.hpp): its
// node, which is the weak reference it holds on its object, and the death inbox through which
// deaths reach the table. Deaths happen on any thread: this file holds all the code they run
// (the node's callback, and a node let go after its table is gone); the table applies what
// they post on its own thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "weakref/detail/object_header.hpp"

namespace weakref::detail {

// Where death callbacks leave the nodes of entries whose object died. Callbacks run on any
// thread, so this is a lock-free stack: pushing is one CAS, and the container takes the whole
// stack at once before each operation. Closing (when the container goes) refuses later pushes.
// Reference-counted: by its table, and by each node whose post may still come after the table
// is gone (see table_node::retire). Node is the table's node type, chained through
// weakref_node's fired_link().
template <class Node>
class death_inbox {
 public:
  bool push(Node* node) noexcept {
    auto* head = head_.load(std::memory_order_relaxed);
    do {
      if (head == closed()) return false;
      node->fired_link() = head;
    } while (!head_.compare_exchange_weak(head, node, std::memory_order_release,
                                          std::memory_order_relaxed));
    return true;
  }
  // A plain load: most operations find the inbox empty, and skip the exchange.
  bool empty() const noexcept { return head_.load(std::memory_order_relaxed) == nullptr; }
  Node* take() noexcept {
    return empty() ? nullptr : head_.exchange(nullptr, std::memory_order_acquire);
  }
  Node* close() noexcept { return head_.exchange(closed(), std::memory_order_acquire); }
  // The posted nodes, newest first, without taking them: for readers, while nobody takes.
  const Node* peek() const noexcept { return head_.load(std::memory_order_acquire); }

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  // Not the address of a static: each shared library built with hidden visibility would have
  // its own, and a container closed by one library's code must refuse the posts of another's.
  // No node is at an odd address.
  static Node* closed() noexcept {
    return reinterpret_cast<Node*>(std::uintptr_t{1});  // NOLINT(performance-no-int-to-ptr)
  }
  std::atomic<Node*> head_{nullptr};
  std::atomic<std::size_t> refs_{1};
};

// `p`, hidden from the optimiser. Knowing that an aliasing shared_ptr's pointer equals its
// source's, GCC copies the source's two words with one 16-byte load right after lock() stored
// them one by one: store-to-load forwarding fails, and a lookup hit took 15 ns instead of 9.
template <class T>
[[gnu::always_inline]] inline T* opaque(T* p) noexcept {
#if defined(__GNUC__)
  asm("" : "+r"(p));
#endif
  return p;
}

// An entry: its node, the weak reference it holds on its object (CPython: KeyedRef, or the
// WeakKeyDictionary/WeakSet internal ref), with the container's fields (key or value) inside,
// so a lookup touches one allocation and keys and values never move. `fields` is engaged
// exactly while the entry is in its table; the table destroys it on removal (not when the last
// handle goes: valuerefs()/keyrefs() handles may outlive the entry by far).
//
// Its callback only posts it to the inbox: the container removes the entry itself, on its own
// thread, so no container lock exists and no death ever waits for a container. Every field but
// the inbox belongs to the container.
//
// Fields names the element type (`element_type`); a new entry's fields are constructed from
// (std::in_place, arguments...), so that Fields' copy and move constructors stay its own.
template <class Fields>
class table_node final : public weakref_node {
 public:
  using element_type = typename Fields::element_type;
  using inbox_type = death_inbox<table_node>;

  template <class... A>
  table_node(object_header& header, const std::shared_ptr<element_type>& element, inbox_type& inbox,
             std::uint64_t entry_hash, std::size_t entry_position, A&&... fields)
      : weakref_node(header, std::weak_ptr<const void>(element), node_kind::other, true),
        fields_(std::in_place, std::forward<A>(fields)...),
        hash(entry_hash),
        position(entry_position),
        inbox_(&inbox) {
    fire_keeps_handle_ = true;  // fire() hands it to the inbox
  }
  ~table_node() override {
    if (owns_inbox_ref_) inbox_->release();
  }

  // The container lets go of its handle, for good. Usually it held the only one: the node is
  // unlinked and deleted at once, and never posts. Otherwise (valuerefs()/keyrefs() share it,
  // or its object's death has taken it) it may still post, maybe after the container is gone,
  // so it keeps the inbox alive until it goes. So only such nodes count references to the inbox.
  void retire() noexcept {
    if (unlinked_ || header().unlink_if_sole(this)) {
      delete this;
      return;
    }
    hold_inbox();
    release();
  }

  // Keeps the inbox alive for as long as the node lives (it may post, or retire, after its
  // table is gone). Once: the node's destructor lets go of it.
  void hold_inbox() noexcept {
    if (owns_inbox_ref_) return;
    inbox_->retain();
    owns_inbox_ref_ = true;
  }

  // Points a node not yet in its table (so not holding the inbox) at the table's inbox as it
  // is now: user code run while the node was made may have replaced the table's contents.
  void rebind_inbox(inbox_type& inbox) noexcept { inbox_ = &inbox; }

  // The container takes over the inbox's handle of a posted node it holds. The death unlinked
  // the node, so if the two are its only handles (no valuerefs()/keyrefs() handle) nobody can
  // take another: the node is the container's alone, and retire() deletes it outright, without
  // the object's lock or an atomic operation.
  void take_post() noexcept {
    if (handles_are(2)) {
      unlinked_ = true;
    } else {
      release();
    }
  }

  // A strong reference to the element, or null if its object died. The node's weak_ptr was
  // made from a shared_ptr<element_type>, so its pointer converts back exactly: no copy of
  // the element pointer needs to be stored.
  std::shared_ptr<element_type> lock_element() const noexcept {
    auto owner = lock();
    auto* element = opaque(static_cast<element_type*>(const_cast<void*>(owner.get())));
    return std::shared_ptr<element_type>(std::move(owner), element);
  }

  Fields& fields() noexcept { return *fields_; }
  const Fields& fields() const noexcept { return *fields_; }
  void destroy_fields() noexcept { fields_.reset(); }

  // The next node posted to the inbox before this one.
  table_node* next_dead() const noexcept { return static_cast<table_node*>(fired_link()); }

  // The entry's flags, in weakref_node's padding.
  using weakref_node::removed;
  using weakref_node::unlinked_;

 private:
  // First: the node's weak_ptr ends weakref_node, so a lookup's reads (the weak_ptr, the
  // header pointer before it, the key) span 28 bytes, within one cache line for half of the
  // 16-byte-aligned places malloc gives (before, 80 bytes: always two lines).
  std::optional<Fields> fields_;

 public:
  std::uint64_t hash;    // the key's mixed hash
  std::size_t position;  // the entry's place in insertion order

 private:
  // The handle detach_all() took for the call becomes the inbox's; the container takes it over.
  void fire() override {
    if (!inbox_->push(this)) release();
  }
  std::string_view where() const noexcept override { return "weak container"; }
  friend class death_inbox<table_node>;  // chains posted nodes through fired_link()

  inbox_type* inbox_;
};

}  // namespace weakref::detail
