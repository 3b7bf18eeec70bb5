// A tour of weakref: every feature, section by section, with what it prints; then the classic
// uses of weak containers and refs (sections 9-13; docs/cookbook.md explains each), and the
// cycle collector (section 14), its ephemerons (15) and "why is this still alive?" (16-17).
// Python's weakref module, for C++ objects owned by std::shared_ptr.
//
// Build and run: cmake --workflow --preset tour
// `weakref_tour --dot-dir DIR` also writes section 16's Graphviz graph to DIR/retention.dot
// (tools/render_retention.sh renders it to docs/retention.svg).
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "weakref/weakref.hpp"

namespace {

const char* yes_no(bool b) { return b ? "yes" : "no"; }

void header(const char* title) { std::printf("\n== %s ==\n", title); }

struct Widget {
  explicit Widget(std::string n) : name(std::move(n)) {}
  ~Widget() { std::printf("    ~Widget(%s)\n", name.c_str()); }
  std::string name;
};

// ---- 1. Weakrefable objects -------------------------------------------------------------------
void weakrefable_objects() {
  header("1. Weakrefable objects");
  auto w = weakref::make_shared<Widget>("alpha");
  std::printf(
      "  weakref::make_shared<Widget>(\"alpha\") -> a plain std::shared_ptr, use_count %ld\n",
      w.use_count());
  std::printf("  is_weakrefable(w): %s\n", yes_no(weakref::is_weakrefable(w)));
  std::shared_ptr<const void> base = w;
  std::printf("  is_weakrefable(shared_ptr<const void> copy): %s\n",
              yes_no(weakref::is_weakrefable(base)));
  auto plain = std::make_shared<Widget>("plain");
  std::printf("  is_weakrefable(std::make_shared<Widget>): %s\n",
              yes_no(weakref::is_weakrefable(plain)));
  try {
    weakref::ref<Widget> r(plain);
  } catch (const weakref::type_error& e) {
    std::printf("  weakref::ref(std::make_shared object) throws type_error:\n    %s\n", e.what());
  }
}

// ---- 2. ref -----------------------------------------------------------------------------------
void refs() {
  header("2. ref");
  auto w = weakref::make_shared<Widget>("beta");
  weakref::ref<Widget> r(w);
  weakref::ref<Widget> r2(w);
  if (auto strong = r.lock()) std::printf("  r.lock()->name: %s\n", strong->name.c_str());
  std::printf("  r.alive(): %s, r == r2: %s\n", yes_no(r.alive()), yes_no(r == r2));
  std::puts("  w.reset()  // the last owner goes");
  w.reset();
  std::printf("  r() == nullptr: %s, r.alive(): %s\n", yes_no(r() == nullptr), yes_no(r.alive()));
  std::printf("  after death: r == r2: %s, same hash: %s  (owner identity, stable)\n",
              yes_no(r == r2), yes_no(std::hash<weakref::ref<Widget>>()(r) == r2.owner_hash()));
}

// ---- 3. Callbacks -----------------------------------------------------------------------------
void callbacks() {
  header("3. Callbacks");
  auto w = weakref::make_shared<Widget>("gamma");
  weakref::ref<Widget> r(w, [](const weakref::ref<Widget>& dead) {
    std::printf("    callback: dead() == nullptr: %s, has_callback(): %s\n",
                yes_no(dead() == nullptr), yes_no(dead.has_callback()));
  });
  std::printf("  ref with a callback; r.has_callback(): %s\n", yes_no(r.has_callback()));
  std::puts("  w.reset()  // callback first, then the destructor");
  w.reset();

  std::puts("  several callbacks on one object (ref, proxy, finalize), newest first:");
  auto v = weakref::make_shared<Widget>("delta");
  weakref::ref<Widget> first(v, [] { std::puts("    callback of the 1st (ref)"); });
  weakref::proxy<Widget> second(v, [] { std::puts("    callback of the 2nd (proxy)"); });
  weakref::finalize third(v, [] { std::puts("    callback of the 3rd (finalize)"); });
  v.reset();

  std::puts("  a callback that throws goes to the unraisable hook; the others still run:");
  auto previous = weakref::set_unraisable_hook([](const weakref::unraisable& u) {
    try {
      std::rethrow_exception(u.error);
    } catch (const std::exception& e) {
      std::printf("    [unraisable] %.*s: %s\n", static_cast<int>(u.where.size()), u.where.data(),
                  e.what());
    }
  });
  auto x = weakref::make_shared<Widget>("epsilon");
  weakref::ref<Widget> calm(x, [] { std::puts("    calm callback ran"); });
  weakref::ref<Widget> angry(x, []() -> void { throw std::runtime_error("callback failed"); });
  x.reset();
  weakref::set_unraisable_hook(std::move(previous));  // back to the default hook
}

// ---- 4. Canonical refs, getweakrefcount, getweakrefs ------------------------------------------
void counting() {
  header("4. Canonical refs, getweakrefcount, getweakrefs");
  auto w = weakref::make_shared<Widget>("zeta");
  weakref::ref<Widget> a(w);
  weakref::ref<Widget> b(w);
  std::printf("  ref a(w), ref b(w): share one weak reference object; getweakrefcount: %zu\n",
              weakref::getweakrefcount(w));
  weakref::proxy<Widget> p(w);
  std::printf("  + proxy p(w): getweakrefcount: %zu\n", weakref::getweakrefcount(w));
  weakref::ref<Widget> c(w, [] {});
  weakref::ref<Widget> d(w, [] {});
  std::printf("  + ref c(w, cb), ref d(w, cb): getweakrefcount: %zu (a callback ref is its own)\n",
              weakref::getweakrefcount(w));
  auto all = weakref::getweakrefs(w);
  std::printf("  getweakrefs(w): %zu refs [canonical ref, canonical proxy, d, c]\n", all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    std::printf("    [%zu] has_callback: %s\n", i, yes_no(all[i].has_callback()));
  }
  all.clear();
  c = weakref::ref<Widget>();
  std::printf("  c dropped: getweakrefcount: %zu\n", weakref::getweakrefcount(w));
  std::printf("  getweakrefcount(std::make_shared<int>(0)): %zu\n",
              weakref::getweakrefcount(std::make_shared<int>(0)));
}

// ---- 5. proxy ---------------------------------------------------------------------------------
struct Account {
  int balance = 0;
  void deposit(int amount) { balance += amount; }
};

struct Greeter {
  std::string operator()(const std::string& who) const { return "hello, " + who; }
};

void proxies() {
  header("5. proxy");
  auto account = weakref::make_shared<Account>();
  weakref::proxy<Account> p(account);
  p->deposit(5);
  std::printf("  p->deposit(5); p->balance: %d\n", p->balance);
  auto greeter = weakref::make_shared<Greeter>();
  weakref::proxy<Greeter> g(greeter);
  std::printf("  callable proxy: g(\"world\"): %s\n", g("world").c_str());
  std::puts("  account.reset()");
  account.reset();
  std::printf("  p.alive(): %s\n", yes_no(p.alive()));
  try {
    p->deposit(1);
  } catch (const weakref::reference_error& e) {
    std::printf("  p->deposit(1) throws reference_error: %s\n", e.what());
  }
}

// ---- 6. weak_method ---------------------------------------------------------------------------
struct Button {
  explicit Button(std::string n) : name(std::move(n)) {}
  void on_click(const std::string& who) {
    ++clicks;
    std::printf("    %s.on_click(%s)\n", name.c_str(), who.c_str());
  }
  int click_count() const { return clicks; }
  std::string name;
  int clicks = 0;
};

// An event source holding its handlers weakly: it never keeps a Button alive.
struct ClickEvent {
  std::vector<weakref::weak_method<Button, void, const std::string&>> handlers;
  void emit(const std::string& who) {
    for (auto& handler : handlers) std::printf("    -> ran: %s\n", yes_no(handler(who)));
  }
};

void weak_methods() {
  header("6. weak_method");
  auto ok = weakref::make_shared<Button>("ok");
  auto cancel = weakref::make_shared<Button>("cancel");
  ClickEvent clicked;
  clicked.handlers.emplace_back(ok, &Button::on_click);
  clicked.handlers.emplace_back(cancel, &Button::on_click);
  std::puts("  clicked.emit(\"ann\"): void methods return bool (whether they ran)");
  clicked.emit("ann");
  weakref::weak_method count(ok, &Button::click_count);
  std::optional<int> n = count();
  std::printf("  weak_method count(ok, &Button::click_count); count(): optional(%d)\n", n.value());
  std::puts("  cancel.reset(); clicked.emit(\"bob\")");
  cancel.reset();
  clicked.emit("bob");
  std::erase_if(clicked.handlers, [](const auto& h) { return !h.alive(); });
  std::printf("  dead handlers pruned: %zu left\n", clicked.handlers.size());
  ok.reset();
  std::printf("  ok.reset(); count().has_value(): %s\n", yes_no(count().has_value()));
}

// ---- 7. finalize ------------------------------------------------------------------------------
struct TempFile {
  explicit TempFile(std::string p) : path(std::move(p)) {}
  std::string path;
};

void remove_file(const std::string& path) { std::printf("    remove_file(%s)\n", path.c_str()); }

// Outlive main(), so their finalizers are still pending at exit.
std::shared_ptr<TempFile> g_session;
std::shared_ptr<TempFile> g_config;

void finalizers() {
  header("7. finalize");
  auto a = weakref::make_shared<TempFile>("/tmp/a");
  weakref::finalize fa(a, remove_file, std::string("/tmp/a"));
  std::printf("  finalize fa(a, remove_file, \"/tmp/a\"); fa.alive(): %s\n", yes_no(fa.alive()));
  std::puts("  a.reset()  // runs at death");
  a.reset();
  std::printf("  fa.alive(): %s\n", yes_no(fa.alive()));
  std::printf("  fa() now: %s (already ran)\n", yes_no(fa()));

  auto b = weakref::make_shared<TempFile>("/tmp/b");
  weakref::finalize fb(b, remove_file, std::string("/tmp/b"));
  std::puts("  fb()  // called explicitly");
  std::printf("  -> ran: %s\n", yes_no(fb()));
  std::printf("  fb() again: %s; b.reset() prints nothing:\n", yes_no(fb()));
  b.reset();

  auto c = weakref::make_shared<TempFile>("/tmp/c");
  weakref::finalize fc(c, remove_file, std::string("/tmp/c"));
  std::printf("  fc.detach(): %s\n", yes_no(fc.detach()));
  std::printf("  fc.detach() again: %s; c.reset() prints nothing:\n", yes_no(fc.detach()));
  c.reset();

  g_config = weakref::make_shared<TempFile>("/tmp/config");
  weakref::finalize fconfig(g_config, remove_file, std::string("/tmp/config"));
  fconfig.atexit(false);
  std::printf("  finalize on g_config with atexit(false): atexit(): %s -> will NOT run at exit\n",
              yes_no(fconfig.atexit()));

  g_session = weakref::make_shared<TempFile>("/tmp/session");
  weakref::finalize(g_session, [] { std::puts("[at exit] finalize: session closed"); });
  std::puts("  finalize on g_session, handle dropped: it will run at exit, after \"end of tour\"");
}

// ---- 8. Weak containers ----------------------------------------------------------------------
void containers() {
  header("8. Weak containers");
  weakref::weak_value_map<std::string, Widget> by_name;  // Python: WeakValueDictionary
  auto eta = weakref::make_shared<Widget>("eta");
  by_name.insert_or_assign("eta", eta);  // Python: by_name["eta"] = eta
  std::printf("  weak_value_map: by_name.get(\"eta\")->name: %s, size(): %zu\n",
              by_name.get("eta")->name.c_str(), by_name.size());
  std::puts("  eta.reset()");
  eta.reset();
  std::printf("  size(): %zu, get(\"eta\") == nullptr: %s\n", by_name.size(),
              yes_no(by_name.get("eta") == nullptr));

  auto theta = weakref::make_shared<Widget>("theta");
  auto iota = weakref::make_shared<Widget>("iota");
  weakref::weak_key_map<Widget, std::string> notes;  // Python: WeakKeyDictionary
  weakref::weak_set<Widget> seen{theta, iota};       // Python: WeakSet
  notes[theta] = "met on Monday";
  std::printf("  weak_key_map: notes[theta]: %s; weak_set members:", notes.at(theta).c_str());
  for (const auto& w : seen) std::printf(" %s", w->name.c_str());  // strong refs, in order
  std::puts("\n  theta.reset()");
  theta.reset();
  std::printf("  notes.size(): %zu, seen.size(): %zu\n", notes.size(), seen.size());
  // And the std conventions: erase_if, as for std containers (they are std ranges too).
  auto removed = erase_if(seen, [](const auto& w) { return w->name == "iota"; });
  std::printf("  erase_if(seen, name is \"iota\"): removed %zu, seen.size(): %zu\n", removed,
              seen.size());
}

struct Texture {
  explicit Texture(std::string n) : name(std::move(n)) {}
  ~Texture() { std::printf("    ~Texture(%s)\n", name.c_str()); }
  std::string name;
};

// ---- 9. Use case: a cache ---------------------------------------------------------------------
// weakref::cache shares one object per key while anyone uses it and, with keep_recent = 0,
// never keeps one alive by itself. Thread-safe: callers of one key share one creation.
void cache() {
  header("9. Use case: a cache (get_or_create)");
  weakref::cache<std::string, Texture> textures;
  auto load = [&textures](const std::string& key) {
    return textures.get_or_create(key, [&key] {  // runs only when no live Texture exists
      std::printf("    loading %s\n", key.c_str());
      return weakref::make_shared<Texture>(key);
    });
  };
  auto a = load("grass");
  auto b = load("grass");  // a hit: no loading
  std::printf("  a == b: %s (one shared object, loaded once); a.reset(), then b.reset():\n",
              yes_no(a == b));
  a.reset();
  b.reset();
  std::printf("  textures.size(): %zu; asked again:\n", textures.size());
  load("grass");  // loaded again, and dies at once: nobody keeps it
}

// ---- 10. Use case: an LRU cache ---------------------------------------------------------------
// keep_recent = N: the cache itself holds the N most recently used objects; older ones live on
// only while someone else holds them, and are still found then.
void lru_cache() {
  header("10. Use case: an LRU cache");
  weakref::cache<std::string, Texture> lru(/*keep_recent=*/2);
  auto get = [&lru](const char* key) {
    bool created = false;
    auto texture = lru.get_or_create(key, [&] {
      created = true;
      return weakref::make_shared<Texture>(key);
    });
    std::printf("    get(%s): %s\n", key, created ? "created" : "hit");
    return texture;
  };
  std::puts("  keep_recent 2; nobody outside holds \"a\" or \"b\":");
  get("a");
  get("b");
  get("a");
  std::puts("  get(\"c\") evicts the least recent, \"b\", which dies:");
  auto held = get("c");
  std::puts("  \"a\" survived because it is recent:");
  get("a");
  std::puts("  get(\"d\") evicts \"c\", but `held` keeps it alive:");
  get("d");
  std::puts("  so the cache still finds it (that evicts \"a\", which dies):");
  get("c");
  auto recent = lru.recent_keys();
  std::printf("  recent_keys(): %s, %s; size(): %zu\n", recent[0].c_str(), recent[1].c_str(),
              lru.size());
}

// ---- 11. Use case: an event bus ---------------------------------------------------------------
// Listeners unsubscribe by dying; notified in subscription order.
struct Listener {
  explicit Listener(std::string n) : name(std::move(n)) {}
  ~Listener() { std::printf("    ~Listener(%s)\n", name.c_str()); }
  void handle(const std::string& event) {
    std::printf("    %s got %s\n", name.c_str(), event.c_str());
    if (event == "close") owned.reset();  // may drop the last reference to another listener
  }
  std::string name;
  std::shared_ptr<Listener> owned;
};

void event_bus() {
  header("11. Use case: an event bus");
  weakref::signal<void(const std::string&)> bus;
  auto dialog = weakref::make_shared<Listener>("dialog");
  auto tooltip = weakref::make_shared<Listener>("tooltip");
  auto logger = weakref::make_shared<Listener>("logger");
  for (const auto& listener : {dialog, tooltip, logger}) bus.connect(listener, &Listener::handle);
  // A callable slot lives until disconnected; a scoped_connection disconnects it at scope exit.
  weakref::scoped_connection console = bus.connect(
      [](const std::string& event) { std::printf("    console got %s\n", event.c_str()); });
  dialog->owned = std::move(tooltip);  // the dialog holds the only strong ref to the tooltip
  auto publish = [&bus](const char* event) {
    std::printf("  bus(\"%s\"), connected slots: %zu\n", event, bus.size());
    bus(event);  // each listener is held strongly while its slot runs
  };
  publish("open");
  std::puts("  the dialog drops the tooltip while handling \"close\": it is not notified");
  publish("close");
  std::puts("  logger.reset(): its slot is disconnected by the death, no unsubscribe");
  logger.reset();
  publish("open");
  std::puts("  console.disconnect()");
  console.disconnect();
  publish("save");
}

// ---- 12. Use case: a side table ---------------------------------------------------------------
// Data attached to objects the code does not own, without touching their type.
struct Meta {
  int clicks = 0;
};

void side_table() {
  header("12. Use case: a side table");
  weakref::weak_key_map<Widget, Meta> meta;
  auto ok = weakref::make_shared<Widget>("ok");
  auto cancel = weakref::make_shared<Widget>("cancel");
  meta[ok].clicks++;  // operator[] inserts Meta{} the first time
  meta[ok].clicks++;
  meta[cancel].clicks++;
  for (const auto& [widget, m] : meta)
    std::printf("  %s: %d clicks\n", widget->name.c_str(), m.clicks);
  std::puts("  ok.reset()");
  ok.reset();
  std::printf("  meta.size(): %zu, meta.contains(cancel): %s\n", meta.size(),
              yes_no(meta.contains(cancel)));
}

// ---- 13. Use case: parent links ---------------------------------------------------------------
// Parents own their children; children point back weakly, so there is no cycle.
struct Node {
  Node(std::string n, const std::shared_ptr<Node>& p) : name(std::move(n)) {
    if (p) parent = weakref::ref<Node>(p);
  }
  ~Node() { std::printf("    ~Node(%s)\n", name.c_str()); }
  std::string path() const {
    auto p = parent();  // nullptr for the root, or once the parent died
    return p ? p->path() + "/" + name : name;
  }
  std::string name;
  weakref::ref<Node> parent;  // weak: no cycle
  std::vector<std::shared_ptr<Node>> children;
};

std::shared_ptr<Node> add_child(const std::shared_ptr<Node>& parent, std::string name) {
  auto child = weakref::make_shared<Node>(std::move(name), parent);
  parent->children.push_back(child);
  return child;
}

void parent_links() {
  header("13. Use case: parent links");
  auto root = weakref::make_shared<Node>("root", nullptr);
  auto leaf = add_child(add_child(root, "docs"), "readme");
  std::printf("  leaf->path(): %s\n", leaf->path().c_str());
  std::printf("  root.use_count(): %ld (children do not own their parent)\n", root.use_count());
  std::puts("  keep the leaf, then root.reset():");
  root.reset();
  std::printf("  leaf->path(): %s, leaf->parent.alive(): %s\n", leaf->path().c_str(),
              yes_no(leaf->parent.alive()));
}

// ---- 14. The cycle collector ------------------------------------------------------------------
// The seeds' tree built the leaky way: children own their parent. std::shared_ptr alone never
// frees it; a type with traverse is tracked, and weakref::gc::collect() frees such cycles.
struct TreeNode {
  explicit TreeNode(std::string n) : name(std::move(n)) {}
  ~TreeNode() { std::printf("    ~TreeNode(%s)\n", name.c_str()); }
  std::string name;
  std::shared_ptr<TreeNode> parent;  // owning: the leak
  std::vector<std::shared_ptr<TreeNode>> children;
  template <class V>
  void traverse(V& visit) {
    visit("parent", parent);
    visit("children", children);
  }
};

std::shared_ptr<TreeNode> make_tree(const std::string& root_name) {
  auto root = weakref::make_shared<TreeNode>(root_name);
  for (const char* name : {"left", "right"}) {
    auto child = weakref::make_shared<TreeNode>(root_name + "." + name);
    child->parent = root;
    root->children.push_back(child);
  }
  return root;
}

void cycle_collector() {
  header("14. The cycle collector: weakref::gc");
  weakref::gc::collect();  // start from a clean slate
  auto kept = make_tree("kept");
  weakref::ref<TreeNode> leaked_root;
  {
    auto leaked = make_tree("leaked");
    leaked_root = weakref::ref<TreeNode>(leaked, [](const weakref::ref<TreeNode>& r) {
      std::printf("    callback: leaked root collected, r() is %s\n", r() ? "alive" : "null");
    });
    weakref::finalize(leaked->children[0], [] { std::puts("    finalize: leaked.left"); });
    std::printf("  is_tracked(leaked): %s, tracked allocations since the last collection: %zu\n",
                yes_no(weakref::gc::is_tracked(leaked)), weakref::gc::get_count());
  }
  std::printf("  last owner gone, leaked_root.alive(): %s (children own their parent)\n",
              yes_no(leaked_root.alive()));
  std::printf("  tracked objects alive: %zu\n", weakref::gc::get_objects().size());
  std::puts("  weakref::gc::collect():");
  auto freed = weakref::gc::collect();
  std::printf("  freed %zu objects; leaked_root.alive(): %s; kept->children.size(): %zu\n", freed,
              yes_no(leaked_root.alive()), kept->children.size());
  auto stats = weakref::gc::get_stats();
  std::printf("  gc::get_stats(): %zu collections, %zu collected, %zu uncollectable\n",
              stats.collections, stats.collected, stats.uncollectable);
  std::puts("  kept.reset(), then collect() again:");
  kept.reset();
  std::printf("  freed %zu objects\n", weakref::gc::collect());
}

// ---- 15. Ephemerons: a side table whose values refer back ----------------------------------
// CPython's WeakKeyDictionary leaks an entry whose value refers to its key (gh-88846). A
// weak_key_map whose values the collector can see into (they have traverse) is a table of
// ephemerons: a value keeps its key alive only through references from outside the value.
struct Control {
  explicit Control(std::string n) : name(std::move(n)) {}
  ~Control() { std::printf("    ~Control(%s)\n", name.c_str()); }
  std::string name;
  template <class V>
  void traverse(V&) {}  // owns nothing the collector must see; having traverse tracks it
};

struct Tooltip {
  std::shared_ptr<Control> owner;  // the value refers back to its key
  std::string text;
  template <class V>
  void traverse(V& visit) {
    visit("owner", owner);
  }
};

void ephemerons() {
  header("15. Ephemerons: a side table whose values refer back");
  weakref::weak_key_map<Control, Tooltip> tips;
  auto button = weakref::make_shared<Control>("button");
  tips[button] = Tooltip{button, "Click me"};
  weakref::ref<Control> r(button);
  std::puts("  tips[button] = Tooltip{button, \"Click me\"}; button.reset()");
  button.reset();
  std::printf("  r.alive(): %s (the value owns its key: Python's WeakKeyDictionary leaks here)\n",
              yes_no(r.alive()));
  std::puts("  weakref::gc::collect():");
  auto freed = weakref::gc::collect();
  std::printf("  freed %zu; r.alive(): %s; tips.size(): %zu\n", freed, yes_no(r.alive()),
              tips.size());
}

// ---- 16. Why is my widget still alive? -------------------------------------------------------
// A panel was closed, but its memory never came back. why_alive finds the chain of strong
// references that keeps it; to_dot draws who holds it.
struct Panel {
  explicit Panel(std::string n) : name(std::move(n)) {}
  ~Panel() { std::printf("    ~Panel(%s)\n", name.c_str()); }
  std::string name;
  std::shared_ptr<Panel> parent;  // owning back link: a cycle with the parent's children
  std::vector<std::shared_ptr<Panel>> children;
  template <class V>
  void traverse(V& visit) {
    visit("parent", parent);
    visit("children", children);
  }
};

struct Command {  // an undo entry remembers the panel it acted on
  std::string what;
  std::shared_ptr<Panel> target;
  template <class V>
  void traverse(V& visit) {
    visit("target", target);
  }
};

struct Window {
  std::vector<std::shared_ptr<Panel>> panels;
  std::vector<Command> undo;
  template <class V>
  void traverse(V& visit) {
    visit("panels", panels);
    visit("undo", undo);
  }
};

void why_alive(const char* dot_dir) {
  header("16. Why is my widget still alive?");
  auto window = weakref::make_shared<Window>();
  auto settings = weakref::make_shared<Panel>("settings");
  auto colors = weakref::make_shared<Panel>("colors");
  colors->parent = settings;
  settings->children.push_back(colors);
  window->panels.push_back(settings);
  window->undo.push_back(Command{"recolor", colors});
  std::puts("  the settings panel is closed: window->panels.clear(), settings.reset()");
  window->panels.clear();
  settings.reset();
  weakref::ref<Panel> r(colors);
  colors.reset();
  std::printf("  colors still alive: %s. weakref::gc::explain_alive(colors):\n", yes_no(r.alive()));
  auto held = r.lock();
  std::printf("    %s\n", weakref::gc::explain_alive(held).str().c_str());
  std::printf("  gc::get_referrers(colors): %zu objects (its parent panel and the window)\n",
              weakref::gc::get_referrers(held).size());
  auto dot = weakref::gc::to_dot(held);
  std::printf("  gc::to_dot(colors): a %zu-byte Graphviz graph", dot.size());
  if (dot_dir) {
    auto path = std::string(dot_dir) + "/retention.dot";
    std::ofstream(path) << dot;
    std::printf(", written to %s", path.c_str());
  }
  std::puts("");
  held.reset();
  std::puts("  the fix: the undo entry lets go; window->undo.clear(), then collect():");
  window->undo.clear();
  std::printf("  freed %zu (the panel cycle)\n", weakref::gc::collect());
}

// ---- 17. The leak finder ------------------------------------------------------------------------
// What would collect() free, and why is it a cycle? find_garbage answers without freeing it.
void leak_finder() {
  header("17. The leak finder: weakref::gc::find_garbage()");
  {
    auto parent = weakref::make_shared<Panel>("dialog");
    auto child = weakref::make_shared<Panel>("ok-button");
    child->parent = parent;
    parent->children.push_back(child);
  }
  {
    auto report = weakref::gc::find_garbage();
    std::string text = report.str();
    for (std::size_t at = 0, end; at < text.size(); at = end + 1) {
      end = text.find('\n', at);
      std::printf("  %s\n", text.substr(at, end - at).c_str());
    }
  }  // the report holds the garbage: let it go first
  std::printf("  then collect(): freed %zu\n", weakref::gc::collect());
}

}  // namespace

int main(int argc, char** argv) {
  const char* dot_dir = nullptr;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--dot-dir") == 0) dot_dir = argv[i + 1];
  }
  std::puts("weakref tour: Python's weakref module for C++ objects owned by std::shared_ptr");
  weakrefable_objects();
  refs();
  callbacks();
  counting();
  proxies();
  weak_methods();
  finalizers();
  containers();
  cache();
  lru_cache();
  event_bus();
  side_table();
  parent_links();
  cycle_collector();
  ephemerons();
  why_alive(dot_dir);
  leak_finder();
  std::puts("\nend of tour");
  return 0;
}
