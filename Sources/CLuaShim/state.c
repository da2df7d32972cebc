// The state: capped allocator, budget hook, protected helpers for Swift, the trampoline, host object handles.
//
// Rule of this file: a function exported to Swift never raises. Anything that may raise (allocation, metamethods,
// running Lua) happens in a static lua_CFunction run under lua_pcall by `protect`, which turns a longjmp into a
// status code. The static `*_k` functions below are those protected bodies; they may raise freely.
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tml_registry_index(void) { return LUA_REGISTRYINDEX; }
int tml_multret(void) { return LUA_MULTRET; }
void tml_pop(lua_State *L, int n) { lua_settop(L, -n - 1); }

tml_state *tml_state_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (tml_state *)ud;
}

double tml_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// MARK: - Allocator

// Lua's heap and the host's accounted bytes share one limit (the group's: a nested script's state draws from the
// same budget as the state that started it). Refusing an allocation makes Lua raise a memory error (after an
// emergency collection), which is a clean, catchable error: the process never runs out of memory because of a
// script. Shrinking never fails (Lua requires that).
static void *tml_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    tml_state *S = (tml_state *)ud;
    tml_group *G = S->group;
    if (ptr == NULL) osize = 0;  // then osize encodes the object type, not a size
    if (nsize == 0) {
        free(ptr);
        S->lua_bytes -= osize;
        G->used -= osize;
        return NULL;
    }
    if (nsize > osize) {
        size_t grow = nsize - osize;
        if (G->used > G->limit || grow > G->limit - G->used) return NULL;
    }
    void *block = realloc(ptr, nsize);
    if (block == NULL) {
        if (nsize > osize) return NULL;
        block = ptr;  // a failed shrink keeps the old block, which is large enough
    }
    S->lua_bytes = S->lua_bytes - osize + nsize;
    G->used = G->used - osize + nsize;
    if (G->used > G->peak) G->peak = G->used;
    return block;
}

size_t tml_memory_used(lua_State *L) { return tml_state_of(L)->lua_bytes; }
size_t tml_memory_total(lua_State *L) { return tml_state_of(L)->group->used; }
size_t tml_memory_peak(lua_State *L) { return tml_state_of(L)->group->peak; }
size_t tml_host_bytes(lua_State *L) { return tml_state_of(L)->host_bytes; }
size_t tml_memory_limit(lua_State *L) { return tml_state_of(L)->group->limit; }
void tml_set_memory_limit(lua_State *L, size_t limit) { tml_state_of(L)->group->limit = limit; }

void tml_add_host(tml_state *S, size_t bytes) {
    S->host_bytes += bytes;
    S->group->used += bytes;
    if (S->group->used > S->group->peak) S->group->peak = S->group->used;
}

void tml_sub_host(tml_state *S, size_t bytes) {
    if (bytes > S->host_bytes) bytes = S->host_bytes;
    S->host_bytes -= bytes;
    S->group->used -= bytes;
}

int tml_account_host(lua_State *L, int64_t delta) {
    tml_state *S = tml_state_of(L);
    tml_group *G = S->group;
    if (delta >= 0) {
        if (G->used > G->limit || (uint64_t)delta > G->limit - G->used) return 0;
        tml_add_host(S, (size_t)delta);
    } else {
        tml_sub_host(S, (size_t)(-(delta + 1)) + 1);  // -delta without overflow at INT64_MIN
    }
    return 1;
}

// MARK: - Protected execution

// Runs f(args...) under lua_pcall. The nargs arguments are on top of the stack; f is inserted below them.
// Returns a status; on error the error value is left on top (in place of the results).
static int protect(lua_State *L, lua_CFunction f, int nargs, int nresults) {
    if (!lua_checkstack(L, 2)) {
        // No room even for the function: drop the arguments and report a memory error without a value.
        // Swift treats this status as "nothing pushed" (see the callers); in practice Lua's stack is 1M slots.
        lua_settop(L, -nargs - 1);
        return TML_ERRSTACK;
    }
    lua_pushcfunction(L, f);
    lua_insert(L, -nargs - 1);
    return lua_pcall(L, nargs, nresults, 0);
}

typedef struct gc_args { int what, arg, result; } gc_args;

static int gc_k(lua_State *L) {
    gc_args *a = (gc_args *)lua_touserdata(L, 1);
    a->result = lua_gc(L, a->what, a->arg);
    return 0;
}

int tml_gc(lua_State *L, int what, int arg) {
    gc_args a = {what, arg, -1};
    if (!lua_checkstack(L, 1)) return -1;
    lua_pushlightuserdata(L, &a);
    int status = protect(L, gc_k, 1, 0);
    if (status != LUA_OK) {
        if (status != TML_ERRSTACK) lua_pop(L, 1);
        return -1;
    }
    return a.result;
}

// MARK: - Panic, budget hook

static int tml_panic(lua_State *L) {
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(error object is not a string)";
    fprintf(stderr, "toymoe: unprotected Lua error (a bug in the Lua host): %s\n", msg);
    fflush(stderr);
    abort();
    return 0;
}

void tml_where(lua_State *L, int level) {
    lua_Debug ar;
    for (; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
    lua_pushliteral(L, "");
}

int tml_budget_raise(lua_State *L, int level) {
    tml_group *G = tml_state_of(L)->group;
    tml_where(L, level);
    if (G->tripped == TML_TRIP_INSTRUCTIONS) {
        lua_pushfstring(L, "instruction budget exceeded (limit: %I instructions)", (lua_Integer)G->instruction_limit);
    } else {
        char seconds[48];
        snprintf(seconds, sizeof seconds, "%g", G->tripped_seconds);
        lua_pushfstring(L, "time limit of %s s exceeded", seconds);
    }
    lua_concat(L, 2);
    return lua_error(L);
}

// The group's own deadline or the outer one, whichever has passed (0 if neither). Reads the clock only when a
// deadline is set.
static double deadline_passed(const tml_group *G) {
    if (G->seconds <= 0 && G->outer_seconds <= 0) return 0;
    double now = tml_now();
    if (G->seconds > 0 && now > G->deadline) return G->seconds;
    if (G->outer_seconds > 0 && now > G->outer_deadline) return G->outer_seconds;
    return 0;
}

static void tml_hook(lua_State *L, lua_Debug *ar);

// Trips the budget if its deadline passed; once tripped, the hook runs after every instruction of this state.
static int budget_check(lua_State *L) {
    tml_group *G = tml_state_of(L)->group;
    if (!G->tripped) {
        double seconds = deadline_passed(G);
        if (seconds > 0) {
            G->tripped = TML_TRIP_TIME;
            G->tripped_seconds = seconds;
        }
    }
    if (G->tripped && lua_gethookcount(L) != 1) lua_sethook(L, tml_hook, LUA_MASKCOUNT, 1);
    return G->tripped;
}

// Called every TML_HOOK_PERIOD instructions on every thread (coroutines inherit the hook from their creator).
// Once the budget has tripped the hook runs after every instruction and raises each time, so a script that
// catches the error with pcall fails again at its next instruction: only the host can re-arm the budget.
static void tml_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    tml_group *G = tml_state_of(L)->group;
    int period = lua_gethookcount(L);
    if (!G->tripped) {
        G->instructions += (uint64_t)period;
        if (G->instruction_limit != 0 && G->instructions > G->instruction_limit) {
            G->tripped = TML_TRIP_INSTRUCTIONS;
        }
    }
    if (budget_check(L)) tml_budget_raise(L, 0);  // level 0: inside a hook, that is the Lua function being executed
    if (period != TML_HOOK_PERIOD) lua_sethook(L, tml_hook, LUA_MASKCOUNT, TML_HOOK_PERIOD);
}

void tml_budget_poll(lua_State *L) {
    if (budget_check(L)) tml_budget_raise(L, 1);
}

int tml_budget_check(lua_State *L) { return budget_check(L); }

size_t tml_budget_message(lua_State *L, char *buffer, size_t size) {
    tml_group *G = tml_state_of(L)->group;
    int n = 0;
    if (G->tripped == TML_TRIP_INSTRUCTIONS) {
        n = snprintf(buffer, size, "instruction budget exceeded (limit: %llu instructions)",
                     (unsigned long long)G->instruction_limit);
    } else if (G->tripped == TML_TRIP_TIME) {
        n = snprintf(buffer, size, "time limit of %g s exceeded", G->tripped_seconds);
    } else if (size > 0) {
        buffer[0] = '\0';
    }
    return n < 0 ? 0 : (size_t)n;
}

double tml_budget_deadline(lua_State *L, double *seconds) {
    tml_group *G = tml_state_of(L)->group;
    double deadline = 0;
    *seconds = 0;
    if (G->seconds > 0) {
        deadline = G->deadline;
        *seconds = G->seconds;
    }
    if (G->outer_seconds > 0 && (deadline == 0 || G->outer_deadline < deadline)) {
        deadline = G->outer_deadline;
        *seconds = G->outer_seconds;
    }
    return deadline;
}

void tml_budget_bound(lua_State *L, double deadline, double seconds) {
    tml_group *G = tml_state_of(L)->group;
    G->outer_deadline = seconds > 0 ? deadline : 0;
    G->outer_seconds = seconds > 0 ? seconds : 0;
}

int tml_budget_share(lua_State *child, lua_State *parent) {
    tml_state *C = tml_state_of(child);
    tml_group *P = tml_state_of(parent)->group;
    if (C->group == P) return 1;
    if (C->borrowed || C->group->refs != 1) return 0;  // only a state's own, unshared group can be given up
    size_t share = C->lua_bytes + C->host_bytes;
    if (P->used > P->limit || share > P->limit - P->used) return 0;
    free(C->group);
    C->group = P;
    C->borrowed = 1;
    P->refs++;
    P->used += share;
    if (P->used > P->peak) P->peak = P->used;
    // The parent's budget may have tripped already: the child then stops at its first hook.
    if (P->tripped) lua_sethook(child, tml_hook, LUA_MASKCOUNT, 1);
    return 1;
}

void tml_budget_arm(lua_State *L, uint64_t instruction_limit, double seconds) {
    tml_state *S = tml_state_of(L);
    if (S->borrowed) return;  // the owner's budget runs on
    tml_group *G = S->group;
    G->instruction_limit = instruction_limit;
    G->instructions = 0;
    G->seconds = seconds > 0 ? seconds : 0;
    G->deadline = seconds > 0 ? tml_now() + seconds : 0;
    G->tripped = TML_TRIP_NONE;
    lua_sethook(L, tml_hook, LUA_MASKCOUNT, TML_HOOK_PERIOD);
}

void tml_budget_save(lua_State *L, tml_budget *out) {
    tml_group *G = tml_state_of(L)->group;
    out->instruction_limit = G->instruction_limit;
    out->instructions = G->instructions;
    out->seconds = G->seconds;
    out->remaining = G->seconds > 0 ? G->deadline - tml_now() : 0;
    out->tripped = G->tripped;
    out->tripped_seconds = G->tripped_seconds;
}

void tml_budget_restore(lua_State *L, const tml_budget *saved) {
    tml_state *S = tml_state_of(L);
    if (S->borrowed) return;
    tml_group *G = S->group;
    G->instruction_limit = saved->instruction_limit;
    G->instructions = saved->instructions;
    G->seconds = saved->seconds;
    G->deadline = saved->seconds > 0 ? tml_now() + saved->remaining : 0;
    G->tripped = saved->tripped;
    G->tripped_seconds = saved->tripped_seconds;
    lua_sethook(L, tml_hook, LUA_MASKCOUNT, saved->tripped ? 1 : TML_HOOK_PERIOD);
}

int tml_budget_tripped(lua_State *L) { return tml_state_of(L)->group->tripped; }
uint64_t tml_budget_instructions(lua_State *L) { return tml_state_of(L)->group->instructions; }

// MARK: - Open and close

static int init_k(lua_State *L) {
    tml_state *S = tml_state_of(L);
    lua_createtable(L, 0, 0);  // handle cache: object pointer -> its userdata, weak values
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    S->handle_cache_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

lua_State *tml_open(size_t memory_limit, tml_callback dispatch, tml_object_fn retain, tml_object_fn release) {
    tml_state *S = (tml_state *)calloc(1, sizeof(tml_state));
    if (S == NULL) return NULL;
    S->group = (tml_group *)calloc(1, sizeof(tml_group));
    if (S->group == NULL) {
        free(S);
        return NULL;
    }
    S->group->limit = memory_limit;
    S->group->refs = 1;
    S->dispatch = dispatch;
    S->retain = retain;
    S->release = release;
    S->handle_cache_ref = LUA_NOREF;
    lua_State *L = lua_newstate(tml_alloc, S);
    if (L == NULL) {
        free(S->group);
        free(S);
        return NULL;
    }
    lua_atpanic(L, tml_panic);
    lua_sethook(L, tml_hook, LUA_MASKCOUNT, TML_HOOK_PERIOD);
    if (protect(L, init_k, 0, 0) != LUA_OK) {
        lua_close(L);
        free(S->group);
        free(S);
        return NULL;
    }
    return L;
}

void tml_close(lua_State *L) {
    tml_state *S = tml_state_of(L);
    lua_close(L);  // runs the handles' __gc, releasing their host objects
    tml_group *G = S->group;
    tml_sub_host(S, S->host_bytes);  // host bytes accounted without a handle and never given back
    G->used -= S->lua_bytes;         // 0 after lua_close; kept for safety
    if (--G->refs == 0) free(G);
    free(S);
}

// MARK: - Loading and calling

static int tml_msgh(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
            msg = lua_tostring(L, -1);
        } else {
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
        }
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int tml_pcall(lua_State *L, int nargs, int nresults) {
    int base = lua_gettop(L) - nargs;  // the function's slot
    if (!lua_checkstack(L, 1)) {
        lua_settop(L, base - 1);
        return TML_ERRSTACK;
    }
    lua_pushcfunction(L, tml_msgh);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return status;
}

int tml_load_buffer(lua_State *L, const char *bytes, size_t length, const char *chunkname) {
    if (!lua_checkstack(L, 2)) return TML_ERRSTACK;
    return luaL_loadbufferx(L, bytes, length, chunkname, "t");
}

typedef struct string_args { const char *bytes; size_t length; } string_args;

static int push_string_k(lua_State *L) {
    string_args *a = (string_args *)lua_touserdata(L, 1);
    lua_pushlstring(L, a->bytes, a->length);
    return 1;
}

int tml_push_string(lua_State *L, const char *bytes, size_t length) {
    string_args a = {bytes, length};
    if (!lua_checkstack(L, 1)) return TML_ERRSTACK;
    lua_pushlightuserdata(L, &a);
    return protect(L, push_string_k, 1, 1);
}

int tml_load_file(lua_State *L, const char *path, const char *chunkname) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot open %s: %s", path, strerror(errno));
        int status = tml_push_string(L, msg, strlen(msg));
        return status == LUA_OK ? LUA_ERRFILE : status;
    }
    size_t capacity = 1 << 16, length = 0;
    char *buffer = (char *)malloc(capacity);
    int failed = buffer == NULL;
    while (!failed) {
        if (length == capacity) {
            char *grown = (char *)realloc(buffer, capacity * 2);
            if (grown == NULL) { failed = 1; break; }
            buffer = grown;
            capacity *= 2;
        }
        size_t n = fread(buffer + length, 1, capacity - length, f);
        length += n;
        if (n == 0) {
            failed = ferror(f);
            break;
        }
    }
    fclose(f);
    if (failed) {
        free(buffer);
        char msg[512];
        snprintf(msg, sizeof msg, "cannot read %s", path);
        int status = tml_push_string(L, msg, strlen(msg));
        return status == LUA_OK ? LUA_ERRFILE : status;
    }
    size_t start = 0;
    if (length >= 3 && memcmp(buffer, "\xEF\xBB\xBF", 3) == 0) start = 3;  // UTF-8 BOM
    if (start < length && buffer[start] == '#') {  // "#!" line: skip it but keep its newline for line numbers
        while (start < length && buffer[start] != '\n') start++;
    }
    int status = tml_load_buffer(L, buffer + start, length - start, chunkname);
    free(buffer);
    return status;
}

// MARK: - Handles (push side)

static void release_handle(tml_state *S, tml_handle *h) {
    void *object = h->object;
    if (object == NULL) return;
    h->object = NULL;
    size_t bytes = (size_t)h->host_bytes;
    h->host_bytes = 0;
    tml_sub_host(S, bytes);
    S->release(object);
}

// Pushes the handle for a host object: the live userdata already made for it (so identity holds in Lua) or a new
// one. Order matters for leaks: the userdata gets its metatable (with __gc) before the object is retained, so a
// memory error at any later point leaves a collectable userdata that releases the object.
static void push_handle(lua_State *L, const tml_value *v) {
    tml_state *S = tml_state_of(L);
    luaL_checkstack(L, 4, "pushing a host object");
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->handle_cache_ref);
    lua_rawgetp(L, -1, v->pointer);
    tml_handle *cached = tml_handle_peek(L, -1);
    if (cached != NULL && cached->object == v->pointer) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    tml_handle *h = (tml_handle *)lua_newuserdatauv(L, sizeof(tml_handle), 0);
    h->object = NULL;
    h->host_bytes = 0;
    h->type_index = v->type_index;
    h->magic = TML_HANDLE_MAGIC;
    lua_rawgeti(L, LUA_REGISTRYINDEX, (lua_Integer)v->a);
    lua_setmetatable(L, -2);
    S->retain((void *)v->pointer);
    h->object = (void *)v->pointer;
    if (v->b > 0) {
        h->host_bytes = v->b;
        tml_add_host(S, (size_t)v->b);
    }
    lua_pushvalue(L, -1);
    lua_rawsetp(L, -3, v->pointer);
    lua_remove(L, -2);
    if (v->b > 0) {
        // Lua's collector does not see host memory: pace it as if Lua had allocated these bytes, so dead
        // handles (and their host buffers) are collected at the rate the host allocates.
        int64_t kib = v->b / 1024;
        lua_gc(L, LUA_GCSTEP, (int)(kib > INT_MAX ? INT_MAX : kib));
    }
}

// MARK: - Value tape

typedef struct tape_args {
    const tml_value *tape;
    size_t count;
    const char *arena;
    int nvalues;
    size_t position;
} tape_args;

static void push_node(lua_State *L, tape_args *t, int depth) {
    if (t->position >= t->count) luaL_error(L, "malformed value tape");
    const tml_value *v = &t->tape[t->position++];
    switch (v->tag) {
    case TML_VNIL: lua_pushnil(L); break;
    case TML_VBOOL: lua_pushboolean(L, v->a != 0); break;
    case TML_VINT: lua_pushinteger(L, (lua_Integer)v->a); break;
    case TML_VNUM: lua_pushnumber(L, (lua_Number)v->number); break;
    case TML_VSTR: lua_pushlstring(L, t->arena + v->a, (size_t)v->b); break;
    case TML_VTABLE: {
        if (depth >= 200) luaL_error(L, "value nested too deeply (more than 200 tables)");
        luaL_checkstack(L, 4, "pushing a table");
        lua_createtable(L, v->a > INT_MAX ? INT_MAX : (int)v->a, v->b > INT_MAX ? INT_MAX : (int)v->b);
        for (int64_t i = 1; i <= v->a; i++) {
            push_node(L, t, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i);
        }
        for (int64_t i = 0; i < v->b; i++) {
            push_node(L, t, depth + 1);
            push_node(L, t, depth + 1);
            lua_rawset(L, -3);
        }
        break;
    }
    case TML_VHANDLE: push_handle(L, v); break;
    case TML_VREF: lua_rawgeti(L, LUA_REGISTRYINDEX, (lua_Integer)v->a); break;
    default: luaL_error(L, "malformed value tape (tag %d)", (int)v->tag);
    }
}

static int push_values_k(lua_State *L) {
    tape_args *t = (tape_args *)lua_touserdata(L, 1);
    lua_settop(L, 0);
    luaL_checkstack(L, t->nvalues + 4, "too many values");
    for (int i = 0; i < t->nvalues; i++) push_node(L, t, 0);
    if (t->position != t->count) luaL_error(L, "malformed value tape (trailing nodes)");
    return t->nvalues;
}

int tml_push_values(lua_State *L, const tml_value *tape, size_t count, const char *arena, int nvalues) {
    tape_args t = {tape, count, arena, nvalues, 0};
    if (!lua_checkstack(L, 1)) return TML_ERRSTACK;
    lua_pushlightuserdata(L, &t);
    return protect(L, push_values_k, 1, LUA_MULTRET);
}

// MARK: - References, paths, modules

static int ref_k(lua_State *L) {
    int *out = (int *)lua_touserdata(L, 2);
    lua_settop(L, 1);
    *out = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int tml_ref(lua_State *L, int *ref) {
    *ref = LUA_NOREF;
    if (!lua_checkstack(L, 1)) {
        lua_pop(L, 1);
        return TML_ERRSTACK;
    }
    lua_pushlightuserdata(L, ref);
    return protect(L, ref_k, 2, 0);
}

static int unref_k(lua_State *L) {
    luaL_unref(L, LUA_REGISTRYINDEX, (int)lua_tointeger(L, 1));
    return 0;
}

void tml_unref(lua_State *L, int ref) {
    if (ref == LUA_NOREF || ref == LUA_REFNIL || !lua_checkstack(L, 1)) return;
    lua_pushinteger(L, ref);
    int status = protect(L, unref_k, 1, 0);
    if (status != LUA_OK && status != TML_ERRSTACK) lua_pop(L, 1);
}

// Leaves the table at the dotted path's prefix (all but the last part) on top and pushes the last part's name.
// create: make missing tables; otherwise push nil instead of the table when a part is missing.
static void walk_path(lua_State *L, const char *path, int create) {
    lua_pushglobaltable(L);
    const char *part = path;
    const char *dot;
    while ((dot = strchr(part, '.')) != NULL) {
        lua_pushlstring(L, part, (size_t)(dot - part));
        lua_pushvalue(L, -1);
        int type = lua_rawget(L, -3);  // the parent is always a table here
        if (type != LUA_TTABLE) {
            if (!create || type != LUA_TNIL) {
                if (create) luaL_error(L, "cannot set '%s': '%s' is not a table", path, lua_tostring(L, -2));
                lua_settop(L, -4);
                lua_pushnil(L);  // the missing table
                lua_pushstring(L, dot + 1);
                return;
            }
            lua_pop(L, 1);
            lua_createtable(L, 0, 4);
            lua_pushvalue(L, -2);  // name
            lua_pushvalue(L, -2);  // new table
            lua_rawset(L, -5);
        }
        lua_remove(L, -2);  // name
        lua_remove(L, -2);  // parent
        part = dot + 1;
    }
    lua_pushstring(L, part);
}

static int set_path_k(lua_State *L) {
    const char *path = (const char *)lua_touserdata(L, 2);
    walk_path(L, path, 1);     // [value, path, table, name]
    lua_pushvalue(L, 1);
    lua_rawset(L, -3);
    return 0;
}

int tml_set_path(lua_State *L, const char *path) {
    if (!lua_checkstack(L, 1)) {
        lua_pop(L, 1);
        return TML_ERRSTACK;
    }
    lua_pushlightuserdata(L, (void *)path);
    return protect(L, set_path_k, 2, 0);
}

static int get_path_k(lua_State *L) {
    const char *path = (const char *)lua_touserdata(L, 1);
    walk_path(L, path, 0);     // [path, table-or-nil, name]
    if (lua_type(L, -2) != LUA_TTABLE) {
        lua_pushnil(L);
        return 1;
    }
    lua_rawget(L, -2);
    return 1;
}

int tml_get_path(lua_State *L, const char *path) {
    if (!lua_checkstack(L, 1)) return TML_ERRSTACK;
    lua_pushlightuserdata(L, (void *)path);
    return protect(L, get_path_k, 1, 1);
}

int tml_trampoline(lua_State *L) {
    tml_state *S = tml_state_of(L);
    int n = S->dispatch(L, lua_touserdata(L, lua_upvalueindex(1)));
    if (n >= 0) return n;
    switch (n) {
    case TML_RAISE_MESSAGE:
        tml_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
        break;
    case TML_RAISE_VALUE:
        break;
    default:
        luaL_checkstack(L, 4, "in a host function");
        tml_where(L, 1);
        lua_pushliteral(L, "host function failed: Lua stack exhausted");
        lua_concat(L, 2);
        break;
    }
    return lua_error(L);
}

typedef struct register_args { const char *module; const char *name; void *context; } register_args;

static int register_k(lua_State *L) {
    register_args *a = (register_args *)lua_touserdata(L, 1);
    if (a->module[0] == '\0') {
        lua_pushglobaltable(L);
    } else {
        walk_path(L, a->module, 1);  // [args, parent, last name]
        lua_pushvalue(L, -1);
        int type = lua_rawget(L, -3);
        if (type != LUA_TTABLE) {
            if (type != LUA_TNIL) luaL_error(L, "cannot register '%s.%s': '%s' is not a table", a->module, a->name,
                                             a->module);
            lua_pop(L, 1);
            lua_createtable(L, 0, 8);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, -5);
        }
        // Record the module as loaded: tracebacks then name its functions "module.name".
        luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        lua_pushvalue(L, -2);
        lua_setfield(L, -2, a->module);
        lua_pop(L, 1);
    }
    lua_pushstring(L, a->name);
    lua_pushlightuserdata(L, a->context);
    lua_pushcclosure(L, tml_trampoline, 1);
    lua_rawset(L, -3);
    return 0;
}

int tml_register_function(lua_State *L, const char *module_path, const char *name, void *context) {
    register_args a = {module_path, name, context};
    if (!lua_checkstack(L, 1)) return TML_ERRSTACK;
    lua_pushlightuserdata(L, &a);
    return protect(L, register_k, 1, 0);
}

static int push_callback_k(lua_State *L) {
    lua_pushcclosure(L, tml_trampoline, 1);  // the context is the only argument
    return 1;
}

int tml_push_callback(lua_State *L, void *context) {
    if (!lua_checkstack(L, 1)) return TML_ERRSTACK;
    lua_pushlightuserdata(L, context);
    return protect(L, push_callback_k, 1, 1);
}

// MARK: - Handle types

tml_handle *tml_handle_peek(lua_State *L, int idx) {
    if (lua_type(L, idx) != LUA_TUSERDATA || lua_rawlen(L, idx) != sizeof(tml_handle)) return NULL;
    tml_handle *h = (tml_handle *)lua_touserdata(L, idx);
    return h != NULL && h->magic == TML_HANDLE_MAGIC ? h : NULL;
}

tml_handle *tml_handle_at(lua_State *L, int idx, int mt_ref) {
    idx = lua_absindex(L, idx);
    tml_handle *h = tml_handle_peek(L, idx);
    if (h == NULL || !lua_checkstack(L, 2)) return NULL;
    if (!lua_getmetatable(L, idx)) return NULL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, mt_ref);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? h : NULL;
}

static const char *handle_type_name(lua_State *L, int idx) {
    if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) {
        const char *name = lua_tostring(L, -1);
        lua_pop(L, 1);  // the metatable keeps the string alive
        return name;
    }
    return "host object";
}

// __index: methods first, then field getters (called with the object), else an error naming the key, so a typo
// like `model.n_feature` fails loudly instead of reading nil.
static int handle_index(lua_State *L) {
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL) {
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        return 1;
    }
    const char *name = handle_type_name(L, 1);
    return luaL_error(L, "%s has no field or method '%s'", name, luaL_tolstring(L, 2, NULL));
}

static int handle_newindex(lua_State *L) {
    const char *name = handle_type_name(L, 1);
    return luaL_error(L, "cannot assign field '%s' of %s (host objects are read-only)",
                      luaL_tolstring(L, 2, NULL), name);
}

// __gc and __close: release the host object (idempotent: a freed handle holds NULL).
static int handle_release(lua_State *L) {
    tml_handle *h = tml_handle_peek(L, 1);
    if (h != NULL) release_handle(tml_state_of(L), h);
    return 0;
}

// obj:free(): explicit release; later uses of obj fail with "... was freed".
static int handle_free(lua_State *L) {
    tml_handle *h = tml_handle_peek(L, 1);
    if (h == NULL) return luaL_error(L, "free: expected a host object (call it as obj:free())");
    release_handle(tml_state_of(L), h);
    return 0;
}

static int handle_tostring(lua_State *L) {
    tml_handle *h = tml_handle_peek(L, 1);
    const char *name = handle_type_name(L, 1);
    if (h == NULL || h->object == NULL) lua_pushfstring(L, "%s (freed)", name);
    else tml_push_value_name(L, 1, name);  // not the object's address: that differs from run to run
    return 1;
}

typedef struct type_args { const char *name; int *ref; int mt_ref; int kind; const char *key; void *context; } type_args;

static int handle_type_new_k(lua_State *L) {
    type_args *a = (type_args *)lua_touserdata(L, 1);
    if (!luaL_newmetatable(L, a->name)) luaL_error(L, "host type '%s' is already registered", a->name);
    int mt = lua_gettop(L);
    lua_createtable(L, 0, 8);  // methods
    lua_pushcfunction(L, handle_free);
    lua_setfield(L, -2, "free");
    lua_createtable(L, 0, 8);  // field getters
    lua_pushvalue(L, -2);
    lua_setfield(L, mt, "__methods");
    lua_pushvalue(L, -1);
    lua_setfield(L, mt, "__fields");
    lua_pushcclosure(L, handle_index, 2);
    lua_setfield(L, mt, "__index");
    lua_pushcfunction(L, handle_newindex);
    lua_setfield(L, mt, "__newindex");
    lua_pushcfunction(L, handle_release);
    lua_setfield(L, mt, "__gc");
    lua_pushcfunction(L, handle_release);
    lua_setfield(L, mt, "__close");
    lua_pushcfunction(L, handle_tostring);
    lua_setfield(L, mt, "__tostring");
    lua_pushboolean(L, 0);  // getmetatable(obj) returns false; setmetatable(obj, ...) is refused
    lua_setfield(L, mt, "__metatable");
    lua_pushvalue(L, mt);
    *a->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int tml_handle_type_new(lua_State *L, const char *name, int *mt_ref) {
    type_args a = {name, mt_ref, 0, 0, NULL, NULL};
    *mt_ref = LUA_NOREF;
    if (!lua_checkstack(L, 1)) return TML_ERRSTACK;
    lua_pushlightuserdata(L, &a);
    return protect(L, handle_type_new_k, 1, 0);
}

static int handle_type_add_k(lua_State *L) {
    type_args *a = (type_args *)lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->mt_ref);
    if (a->kind == 2) {
        lua_pushlightuserdata(L, a->context);
        lua_pushcclosure(L, tml_trampoline, 1);
        lua_setfield(L, -2, "__tostring");
        return 0;
    }
    lua_getfield(L, -1, a->kind == 0 ? "__methods" : "__fields");
    lua_pushlightuserdata(L, a->context);
    lua_pushcclosure(L, tml_trampoline, 1);
    lua_setfield(L, -2, a->key);
    return 0;
}

int tml_handle_type_add(lua_State *L, int mt_ref, int kind, const char *key, void *context) {
    type_args a = {NULL, NULL, mt_ref, kind, key, context};
    if (!lua_checkstack(L, 1)) return TML_ERRSTACK;
    lua_pushlightuserdata(L, &a);
    return protect(L, handle_type_add_k, 1, 0);
}
