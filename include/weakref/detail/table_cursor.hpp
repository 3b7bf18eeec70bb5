// weakref/detail/table_cursor.hpp — how a weak table knows its iterators: the part of an
// iterator the table sees (table_cursor), and the table's list of the iterators that hold a
// position (cursor_list). The list has its own spin lock because reading operations, which may
// run on several threads at once, make and drop iterators.
#pragma once

#include <atomic>
#include <cstddef>
#include <utility>

namespace weakref::detail {

template <class Fields>
class weak_table;
template <class Fields>
class cursor_list;

// The part of an iterator that its table knows. A table keeps the iterators that hold a
// position in an intrusive list, so that it can keep compaction away from them, carry them
// along when its contents move (swap and move: iterators follow their entries, as std's do),
// and detach them when it is destroyed (an iterator may outlive its container, as std's may;
// it must not be used then, but destroying it is fine).
template <class Fields>
class table_cursor {
 protected:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  table_cursor() noexcept = default;
  table_cursor(weak_table<Fields>* table, std::size_t i) noexcept : table_(table), i_(i) {}
  table_cursor(const table_cursor&) = delete;
  table_cursor& operator=(const table_cursor&) = delete;
  ~table_cursor() = default;

  bool registered() const noexcept { return table_ && i_ != npos; }

  weak_table<Fields>* table_ = nullptr;
  std::size_t i_ = npos;

 private:
  friend class cursor_list<Fields>;
  table_cursor* prev_ = nullptr;
  table_cursor* next_ = nullptr;
};

// The iterators registered with a table: they register while they hold a position, so the
// table's order is not compacted under them. Reading operations make iterators, so adding,
// moving and removing take a (spin) lock (several threads may iterate one const container);
// they only link and unlink. The rest runs in the table's changing operations, which have the
// container to themselves.
//
// The iterator an insertion returns, usually dropped at once, registers in a slot of its own
// (`fresh_`) instead of the list: a store to register, a load and a store to leave, where
// leaving the list takes its lock, an atomic read-modify-write (measured: an insertion took 8%
// longer). Only that iterator clears the slot, and only changing operations set it, so the slot
// needs no lock: relaxed atomic loads and stores, as other iterators' operations read it.
template <class Fields>
class cursor_list {
 public:
  using cursor = table_cursor<Fields>;

  cursor_list() noexcept = default;
  cursor_list(const cursor_list&) = delete;
  cursor_list& operator=(const cursor_list&) = delete;

  // No iterator holds a position. Changing operations only.
  bool empty() const noexcept {
    return head_ == nullptr && fresh_.load(std::memory_order_relaxed) == nullptr;
  }

  // GCC 12 takes a registered temporary for a dangling pointer, not seeing that moving it
  // (move) or destroying it (remove) takes it out of the list.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
  void add(cursor& c) noexcept {
    lock_guard lock(locked_);
    add_exclusive(c);
  }
  // For an iterator that a changing operation makes: no other thread may use the container
  // meanwhile, its iterators included ([res.on.data.races]: an iterator's operations may read
  // its container), so no lock. Saves an atomic operation on every insertion.
  void add_exclusive(cursor& c) noexcept {
    c.prev_ = nullptr;
    c.next_ = head_;
    if (head_) head_->prev_ = &c;
    head_ = &c;
  }
  // For the iterator an insertion returns (a changing operation: see add_exclusive). The
  // previous insertion's iterator, if still alive, moves to the list.
  void add_fresh(cursor& c) noexcept {
    settle_fresh();
    fresh_.store(&c, std::memory_order_relaxed);
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
  // `to` takes `from`'s place (an iterator was moved).
  void move(cursor& from, cursor& to) noexcept {
    if (fresh_.load(std::memory_order_relaxed) == &from) {
      fresh_.store(&to, std::memory_order_relaxed);
      return;
    }
    lock_guard lock(locked_);
    to.prev_ = std::exchange(from.prev_, nullptr);
    to.next_ = std::exchange(from.next_, nullptr);
    (to.prev_ ? to.prev_->next_ : head_) = &to;
    if (to.next_) to.next_->prev_ = &to;
  }
  // The entries removed under iterators stay until the next changing operation after the last
  // iterator is gone (an iterator may be destroyed in a reading context).
  void remove(cursor& c) noexcept {
    if (fresh_.load(std::memory_order_relaxed) == &c) {
      fresh_.store(nullptr, std::memory_order_relaxed);
      return;
    }
    lock_guard lock(locked_);
    (c.prev_ ? c.prev_->next_ : head_) = c.next_;
    if (c.next_) c.next_->prev_ = c.prev_;
    c.prev_ = c.next_ = nullptr;
  }

  // Changing operations only. Two tables swapped contents: each takes the other's iterators
  // (fresh ones included, as listed ones), which then follow (retarget) their entries to their
  // new table.
  void swap(cursor_list& other) noexcept {
    settle_fresh();
    other.settle_fresh();
    std::swap(head_, other.head_);
  }
  void retarget(weak_table<Fields>* table) noexcept {
    for (auto* c = head_; c; c = c->next_) c->table_ = table;
  }
  // The table is going: its iterators are left at the end, with no table.
  void detach_all() noexcept {
    settle_fresh();
    for (auto* c = std::exchange(head_, nullptr); c;) {
      auto* next = std::exchange(c->next_, nullptr);
      c->prev_ = nullptr;
      c->table_ = nullptr;
      c->i_ = cursor::npos;
      c = next;
    }
  }

 private:
  class lock_guard {
   public:
    explicit lock_guard(std::atomic<bool>& locked) noexcept : locked_(locked) {
      while (locked_.exchange(true, std::memory_order_acquire)) {
        while (locked_.load(std::memory_order_relaxed)) {
        }
      }
    }
    ~lock_guard() { locked_.store(false, std::memory_order_release); }
    lock_guard(const lock_guard&) = delete;
    lock_guard& operator=(const lock_guard&) = delete;

   private:
    std::atomic<bool>& locked_;
  };

  // Changing operations only: the fresh iterator, if any, joins the list.
  void settle_fresh() noexcept {
    if (auto* fresh = fresh_.load(std::memory_order_relaxed)) {
      fresh_.store(nullptr, std::memory_order_relaxed);
      add_exclusive(*fresh);
    }
  }

  cursor* head_ = nullptr;
  std::atomic<cursor*> fresh_{nullptr};  // the last insertion's iterator, if alive (see above)
  std::atomic<bool> locked_{false};
};

}  // namespace weakref::detail
