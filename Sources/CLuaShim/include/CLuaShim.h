// CLuaShim: the only C between Swift and Lua 5.4.
//
// Contract with the Swift side (ToyMoELua):
//   * Every function declared here is safe to call from a Swift frame: none of them raises a Lua error (longjmp).
//     Functions that must do something that can raise (allocate, run Lua code, call metamethods) run it inside
//     lua_pcall and return a status (LUA_OK or an error code, with the error value pushed).
//   * Errors raised on behalf of Swift code are raised by the C trampoline (`tml_push_callback`) after the Swift
//     callback has returned, so the longjmp only crosses C frames.
//   * Swift may additionally call these Lua API functions directly, because they never raise: lua_gettop,
//     lua_settop (to shrink), lua_absindex, lua_checkstack, lua_type, lua_typename, lua_toboolean, lua_isinteger,
//     lua_tointegerx, lua_tonumberx, lua_tolstring (on values of type LUA_TSTRING only: on numbers it converts in
//     place and allocates), lua_rawlen, lua_rawequal, lua_rawgeti, lua_next (keys from a previous lua_next only),
//     lua_touserdata, lua_topointer, lua_pushvalue, lua_pushnil, lua_pushinteger, lua_pushnumber,
//     lua_pushboolean, lua_pushlightuserdata (the pushes only after lua_checkstack succeeded).
//     Anything else (lua_pushstring, lua_newtable, lua_setfield, lua_call, luaL_check*, ...) can raise and must
//     go through a helper below.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Constants Swift cannot import (macros built from other macros)

int tml_registry_index(void);        // LUA_REGISTRYINDEX
int tml_multret(void);               // LUA_MULTRET
void tml_pop(lua_State *L, int n);   // lua_pop (never raises)
// Deliberately not wrapped: lua_newtable, lua_pushstring, lua_tostring on non-strings, luaL_dostring, lua_error,
// luaL_error, luaL_check*: they raise (or convert in place), so Swift reaches them only through the protected
// helpers below (tml_push_values, tml_push_string, tml_load_*, tml_pcall) or from C trampolines.

/// Status of a helper that could not even grow the stack: nothing was pushed (its arguments were popped).
#define TML_ERRSTACK 104

// MARK: - Callbacks into Swift

/// A host function called by the trampoline. It reads its arguments with non-raising calls, pushes its results
/// (through tml_push_values) and returns their count (>= 0), or returns one of the TML_RAISE_* codes.
typedef int (*tml_callback)(lua_State *L, void *context);
/// Result codes of a tml_callback.
enum {
    TML_RAISE_MESSAGE = -1,  // a message string is on top: the trampoline prefixes "file:line: " and raises it
    TML_RAISE_VALUE = -2,    // an error value is on top: raised as is (e.g. a memory error from a protected push)
    TML_RAISE_NOSTACK = -3,  // not even the message could be pushed: the trampoline raises a fixed message
};
/// Receives one line of `print` output (without the newline). Must not call back into Lua.
typedef void (*tml_print_sink)(void *context, const char *bytes, size_t length);
/// Retains or releases a host object held by a userdata handle (Unmanaged retain/release on the Swift side).
typedef void (*tml_object_fn)(void *object);

// MARK: - State, allocator, host memory

/// Sandbox limits for library functions that run as one uninterruptible C call.
typedef struct tml_limits {
    size_t pattern_subject_max;   // string.find/match/gmatch/gsub: longest subject, bytes
    size_t pattern_length_max;    // longest pattern, bytes
    uint64_t pattern_step_max;    // matcher steps per call (backtracking work); also polls the deadline
    size_t rep_max;               // string.rep: longest result, bytes
    uint64_t table_move_max;      // table.move: most elements per call
} tml_limits;

/// Creates a state whose allocator refuses to grow Lua's heap plus the accounted host bytes beyond
/// `memory_limit` bytes, with the budget hook installed (inherited by every coroutine) and a panic handler
/// that aborts with a message (a panic means an unprotected error: a bug in this shim). NULL if out of memory.
lua_State *tml_open(size_t memory_limit, tml_callback dispatch, tml_object_fn retain, tml_object_fn release);
/// Closes the state (running host finalizers, which release their Swift objects) and frees the shim's state.
void tml_close(lua_State *L);

size_t tml_memory_used(lua_State *L);     // bytes allocated by Lua now (this state)
size_t tml_memory_total(lua_State *L);    // Lua heaps + host bytes of every state sharing this state's budget
size_t tml_memory_peak(lua_State *L);     // largest Lua heap + host bytes seen (of the shared budget)
size_t tml_host_bytes(lua_State *L);      // bytes accounted by the host (tml_account_host, handles)
size_t tml_memory_limit(lua_State *L);
void tml_set_memory_limit(lua_State *L, size_t limit);
/// Adds `delta` host bytes (negative: subtracts, clamped at 0). A positive delta that would exceed the limit is
/// refused (returns 0, nothing accounted); otherwise returns 1.
int tml_account_host(lua_State *L, int64_t delta);
/// Protected lua_gc(L, what, arg). Returns lua_gc's result, or -1 if it raised (the error value is popped).
int tml_gc(lua_State *L, int what, int arg);

// MARK: - Sandbox

/// Opens base, table, string, math, utf8 and coroutine, and applies the sandbox: removes dofile, loadfile,
/// string.dump, math.random/randomseed (the host installs seeded ones); wraps load (text only), collectgarbage
/// ("count" only), setmetatable (refuses __gc), string.find/match/gmatch/gsub (own matcher with caps and a step
/// budget), string.rep (capped), table.insert/remove (refuse __len), table.move (capped); replaces table.sort with
/// a stable merge sort that polls the deadline, load of a string with a piecewise load that polls it too, tostring
/// and string.format("%s") with deterministic names for tables/functions/threads/userdata ("table: #3", no
/// addresses; "%p" refused), print with one that writes lines to `sink`; and makes reading an undefined global an
/// error. Returns a status.
int tml_open_sandbox(lua_State *L, const tml_limits *limits, tml_print_sink sink, void *sink_context);
void tml_set_limits(lua_State *L, const tml_limits *limits);
/// Starts value names ("table: #1") afresh: values named before get new numbers when named again. A sweep calls it
/// at the start of each cell, so that names depend on the cell alone, not on which cells a worker ran before.
/// Returns a status (a memory error is returned, not raised).
int tml_reset_value_names(lua_State *L);

// MARK: - Budget (instruction count and wall-clock deadline)

enum { TML_TRIP_NONE = 0, TML_TRIP_INSTRUCTIONS = 1, TML_TRIP_TIME = 2 };

/// A saved budget, for nesting (a sweep cell with its own budget inside a script's budget).
typedef struct tml_budget {
    uint64_t instruction_limit;   // 0: unlimited
    uint64_t instructions;        // executed so far (counted in hook periods)
    double seconds;               // the time limit as given, <= 0: unlimited
    double remaining;             // seconds left when saved
    int tripped;                  // TML_TRIP_*
    double tripped_seconds;       // the limit that tripped (for the message)
} tml_budget;

/// Starts a fresh budget: counter at 0, deadline = now + seconds (seconds <= 0: no deadline), not tripped.
void tml_budget_arm(lua_State *L, uint64_t instruction_limit, double seconds);
/// Saves the running budget (its remaining time, so the clock pauses while a nested budget runs).
void tml_budget_save(lua_State *L, tml_budget *out);
/// Restores a saved budget: deadline = now + remaining.
void tml_budget_restore(lua_State *L, const tml_budget *saved);
/// TML_TRIP_* of the running budget. Once tripped, every later hook call raises again until re-armed.
int tml_budget_tripped(lua_State *L);
/// Checks the deadline now (for long host calls: between training steps, chunks of a file, ...): trips the budget
/// if it passed (the hook then raises at the script's next instruction, whatever pcall does). Returns TML_TRIP_*.
/// Never raises.
int tml_budget_check(lua_State *L);
/// Writes the tripped budget's error message ("time limit of 2 s exceeded", ...; "" if not tripped), without a
/// location, into `buffer`. Returns the length it needed.
size_t tml_budget_message(lua_State *L, char *buffer, size_t size);
/// The earliest deadline bounding this state (its own or the outer one), in tml_now() seconds, 0 if none;
/// `*seconds` receives that limit as given. Host code running off the Lua thread compares tml_now() with it.
double tml_budget_deadline(lua_State *L, double *seconds);
/// Bounds L's budget by another deadline too (tml_now() seconds; seconds <= 0: none), e.g. the deadline of the run
/// that started a nested script's sweep: a worker state on another thread then stops when either passes.
void tml_budget_bound(lua_State *L, double deadline, double seconds);
/// Makes `child` (a fresh state, same thread) draw from `parent`'s budget: one memory limit for both heaps and
/// their host bytes, and the parent's instruction count and deadline (arming or restoring the child's budget then
/// does nothing). Returns 0 (and changes nothing) if the child's memory does not fit in the parent's remaining
/// limit. Used for toymoe.run_script: one budget covers everything a run starts.
int tml_budget_share(lua_State *child, lua_State *parent);
/// Monotonic clock, seconds (the one deadlines use).
double tml_now(void);
uint64_t tml_budget_instructions(lua_State *L);

// MARK: - Loading and calling (always protected)

/// Loads a text chunk (binary chunks are refused). Pushes the function, or the error message. Returns a status.
int tml_load_buffer(lua_State *L, const char *bytes, size_t length, const char *chunkname);
/// Loads a text file; a first line starting with '#' is skipped (kept as an empty line so line numbers stay
/// right), as is a UTF-8 BOM. Pushes the function or the error message ("cannot open ..."). Returns a status.
int tml_load_file(lua_State *L, const char *path, const char *chunkname);
/// lua_pcall with a message handler that appends "\nstack traceback:\n..." to string messages (not for memory
/// errors: Lua does not call handlers for those). On error exactly one value (the message) is left.
int tml_pcall(lua_State *L, int nargs, int nresults);

// MARK: - Pushing host values

/// One node of a value tape: a LuaValue flattened in prefix order.
typedef struct tml_value {
    int32_t tag;         // TML_V*
    int32_t type_index;  // handles: the host type's index
    int64_t a;           // bool 0/1; integer; string: offset in the arena; table: array count; handle: metatable
                         // ref; ref: registry ref
    int64_t b;           // string: length; table: number of (key, value) pairs; handle: host bytes
    double number;       // number
    const void *pointer; // handle: the host object (unretained; retained by the userdata once created)
} tml_value;
enum { TML_VNIL = 0, TML_VBOOL, TML_VINT, TML_VNUM, TML_VSTR, TML_VTABLE, TML_VHANDLE, TML_VREF };

/// Pushes `nvalues` values from the tape (a table node is followed by its array values, then its key/value
/// pairs, each a subtree). Protected: returns a status; on error nothing but the error value is pushed.
int tml_push_values(lua_State *L, const tml_value *tape, size_t count, const char *arena, int nvalues);
/// Pushes one string, protected. Returns a status (on error the error value is pushed instead).
int tml_push_string(lua_State *L, const char *bytes, size_t length);

// MARK: - Registry references, globals and modules (protected)

/// Pops the top value and stores it in the registry; *ref receives the reference. Returns a status.
int tml_ref(lua_State *L, int *ref);
/// Releases a registry reference (protected; ignores errors).
void tml_unref(lua_State *L, int ref);
/// Pops the top value and assigns it to a dotted path of tables from the globals ("params", "toymoe.version"),
/// creating missing intermediate tables; raw accesses (no metamethods). Returns a status.
int tml_set_path(lua_State *L, const char *path);
/// Pushes the value at a dotted path (nil if any part is missing or not a table); raw accesses. Returns a status.
int tml_get_path(lua_State *L, const char *path);
/// Sets `name` in the module table at `module_path` (created if missing, and recorded as loaded so tracebacks
/// name functions "module.name") to a trampoline closure calling the host dispatch with `context`.
/// An empty module_path means a global function. Returns a status.
int tml_register_function(lua_State *L, const char *module_path, const char *name, void *context);
/// Pushes a trampoline closure for `context`. Returns a status.
int tml_push_callback(lua_State *L, void *context);

// MARK: - Host object handles

/// The block of a handle userdata. `object` is a retained host object, NULL once freed.
typedef struct tml_handle {
    void *object;
    int64_t host_bytes;
    int32_t type_index;
    uint32_t magic;
} tml_handle;

/// Creates the metatable of a handle type: __name, __index (methods, then field getters, else an error),
/// __newindex (an error: host objects are read-only), __gc and __close (release the host object), a default
/// __tostring, a `free` method, and __metatable (scripts cannot read or replace it). *mt_ref receives its
/// registry reference. Returns a status.
int tml_handle_type_new(lua_State *L, const char *name, int *mt_ref);
/// Adds a host callback to a handle type. kind 0: method `key`; 1: field getter `key` (called with the object,
/// its first result is the field); 2: __tostring (key ignored). Returns a status.
int tml_handle_type_add(lua_State *L, int mt_ref, int kind, const char *key, void *context);
/// The handle at `idx` if it is a live-or-freed handle whose metatable is registry[mt_ref], else NULL. Non-raising.
tml_handle *tml_handle_at(lua_State *L, int idx, int mt_ref);
/// The handle at `idx` if it is any handle (size and magic check only), else NULL. Non-raising.
tml_handle *tml_handle_peek(lua_State *L, int idx);

#ifdef __cplusplus
}
#endif
