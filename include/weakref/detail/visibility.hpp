// weakref/detail/visibility.hpp — WEAKREF_PROCESS_WIDE, on the few declarations that own
// state meant to be one per process (the collector's registries, the finalizers' exit
// registry, the unraisable hook slot, the collector's per-thread flags) and on object_header,
// whose type_info std::get_deleter compares. It gives them default symbol visibility, so that
// shared libraries built with -fvisibility=hidden still share one copy: the dynamic linker
// merges default-visibility inline statics (g++ marks them STB_GNU_UNIQUE) and type_infos.
// See docs/design.md, "Shared libraries and symbol visibility". Define it empty before
// including weakref to give each shared library its own copy (then objects must not cross).
#pragma once

#ifndef WEAKREF_PROCESS_WIDE
#if (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32) && !defined(__CYGWIN__)
#define WEAKREF_PROCESS_WIDE __attribute__((visibility("default")))
#else
#define WEAKREF_PROCESS_WIDE
#endif
#endif
