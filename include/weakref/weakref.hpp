// weakref/weakref.hpp — everything: Python's weakref module for objects owned by
// std::shared_ptr. Includes every public header and nothing else.
#pragma once

#include "weakref/cache.hpp"
#include "weakref/errors.hpp"
#include "weakref/finalize.hpp"
#include "weakref/gc.hpp"
#include "weakref/make_shared.hpp"
#include "weakref/proxy.hpp"
#include "weakref/ref.hpp"
#include "weakref/signal.hpp"
#include "weakref/unraisable.hpp"
#include "weakref/weak_key_map.hpp"
#include "weakref/weak_method.hpp"
#include "weakref/weak_set.hpp"
#include "weakref/weak_value_map.hpp"
