// Shared between the shim's C files; not visible to Swift.
#pragma once

#include "CLuaShim.h"

#define TML_HANDLE_MAGIC 0x544D4C48u  // "TMLH"
/// Instructions between two budget-hook calls: the hook costs one C call and one clock read per period.
#define TML_HOOK_PERIOD 1000

/// One budget: a memory limit and an instruction/time budget. A state owns one; a state started by another on the
/// same thread (toymoe.run_script) shares its parent's instead, so everything a run starts draws from one budget.
/// Only states of one thread share a group (no locks); a sweep worker on another thread has its own group and at most
/// an `outer_deadline` copied from the group that started it.
typedef struct tml_group {
    size_t used;                 // Lua heaps + accounted host bytes of every member state
    size_t limit;
    size_t peak;
    uint64_t instruction_limit;  // 0: unlimited
    uint64_t instructions;
    double seconds;              // <= 0: no deadline
    double deadline;             // monotonic seconds
    double outer_seconds;        // a deadline that also bounds this group (<= 0: none), e.g. the run that started
    double outer_deadline;       //   a nested script's sweep
    double tripped_seconds;      // the limit that tripped, for the message
    int tripped;                 // TML_TRIP_*
    int refs;                    // member states (same thread)
} tml_group;

typedef struct tml_state {
    // Memory: this state's share (for reporting, and to give back when it closes); the limit is the group's.
    size_t lua_bytes;
    size_t host_bytes;
    tml_group *group;
    int borrowed;                // the group belongs to another state: arming the budget is the owner's job

    tml_limits limits;

    tml_callback dispatch;
    tml_object_fn retain;
    tml_object_fn release;
    tml_print_sink print_sink;
    void *print_context;

    int handle_cache_ref;        // registry ref of a weak-valued table: light userdata(object) -> handle
} tml_state;

tml_state *tml_state_of(lua_State *L);
double tml_now(void);
/// Polls the deadline (trips the budget if it passed) and raises the budget error if tripped. For C loops that
/// the count hook cannot interrupt (the pattern matcher). May raise: call only from C functions run by Lua.
void tml_budget_poll(lua_State *L);
/// Adds host bytes already decided (a handle's size) to the state and its group, updating the peak.
void tml_add_host(tml_state *S, size_t bytes);
/// Subtracts host bytes from the state and its group (clamped at the state's share).
void tml_sub_host(tml_state *S, size_t bytes);
/// Raises the error of a tripped budget ("instruction budget exceeded ..." / "time limit of N s exceeded").
int tml_budget_raise(lua_State *L, int level);

/// Pushes "chunk:line: " of the nearest Lua function at or above stack `level` (or "" if none). Level 0 is the
/// running function; from a C function, level 1 is its caller. Unlike luaL_where(L, 1), it skips C frames, so
/// an error raised by a host function called through pcall or a metamethod still names the script line.
void tml_where(lua_State *L, int level);

/// Pushes "kind: #N", the deterministic name of the value at idx (a table, function, thread or userdata): N counts
/// from 1 in order of first naming, per state (sandbox.c). Used instead of addresses, which differ per run.
void tml_push_value_name(lua_State *L, int idx, const char *kind);

/// The trampoline closure: upvalue 1 is the light userdata context handed to the dispatch callback.
int tml_trampoline(lua_State *L);

// Pattern functions (patterns.c); each reads its limits from the state.
int tml_str_find(lua_State *L);
int tml_str_match(lua_State *L);
int tml_str_gmatch(lua_State *L);
int tml_str_gsub(lua_State *L);
