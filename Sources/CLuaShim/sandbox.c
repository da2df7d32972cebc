// The script sandbox: which libraries a script sees, and wrappers that keep single C calls bounded.
//
// The count hook interrupts Lua code, but not one long C call. So every library function whose work is not bounded
// by its input size times a small constant, or by the memory limit, is capped here:
//   string.find/match/gmatch/gsub  own matcher (patterns.c): subject and pattern length caps plus a step budget
//                                  that also polls the deadline (a backtracking pattern is exponential otherwise)
//   string.rep                     result length cap (and string.rep("", huge) returns "" instead of looping)
//   table.move                     element count cap (moving nils into an empty table allocates nothing)
//   table.insert/remove            refuse tables with __len (a lying __len makes them loop without allocating)
//   table.sort                     own merge sort (below): deterministic, stable, polls the deadline
//   load (of a string)             fed to the parser in pieces, polling the deadline between them
// Everything else either runs Lua code (hooked), or allocates as it goes (stopped by the memory limit).
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

// Runs the original library function (upvalue 1, a C function without upvalues) in this call's frame, so its
// errors name the script's line and the function as the script called it ("bad argument #1 to 'setmetatable'").
static int call_original(lua_State *L) {
    lua_CFunction original = lua_tocfunction(L, lua_upvalueindex(1));
    return original(L);
}

// load(chunk [, chunkname [, mode [, env]]]) with mode forced to "t": binary chunks can crash the VM.
// A string chunk is handed to the parser in pieces, and the deadline is polled between them: compiling tens of
// megabytes of source is one long C call the count hook cannot interrupt.
typedef struct piece_reader { const char *next; size_t left; } piece_reader;

#define TML_LOAD_PIECE (256 << 10)

static const char *read_piece(lua_State *L, void *ud, size_t *size) {
    piece_reader *r = (piece_reader *)ud;
    if (r->left == 0) return NULL;
    tml_budget_poll(L);  // raises inside the parser's protected call: load fails; sb_load re-raises it below
    const char *piece = r->next;
    *size = r->left < TML_LOAD_PIECE ? r->left : TML_LOAD_PIECE;
    r->next += *size;
    r->left -= *size;
    return piece;
}

static int sb_load(lua_State *L) {
    if (lua_type(L, 1) != LUA_TSTRING) {  // a reader function runs Lua code, which the hook interrupts
        if (lua_gettop(L) < 3) lua_settop(L, 3);  // env stays absent (an explicit nil env would be used as _ENV)
        lua_pushliteral(L, "t");
        lua_replace(L, 3);
        return call_original(L);
    }
    size_t length = 0;
    const char *source = lua_tolstring(L, 1, &length);
    const char *chunkname = luaL_optstring(L, 2, source);
    int env = lua_isnone(L, 4) ? 0 : 4;
    piece_reader r = {source, length};
    int status = lua_load(L, read_piece, &r, chunkname, "t");
    if (tml_budget_tripped(L)) tml_budget_raise(L, 1);  // not a load failure the script could handle
    if (status != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (env != 0) {
        lua_pushvalue(L, env);
        if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    }
    return 1;
}

// table.sort(list [, comp]): a bottom-up merge sort replacing Lua's quicksort, whose pivot is randomized from the
// clock and addresses once a partition is unbalanced, so that equal keys came out in a different order in every
// run. This one is stable (equal elements keep their order), so the result is a pure function of the list and the
// comparator. Like the stock sort it reads and writes the list with lua_geti/lua_seti (honouring __index and
// __newindex) and calls `comp(a, b)` (or `<`) from C through lua_call, so comparator errors propagate with their
// own message; an inconsistent comparator cannot make it read out of bounds, so instead of "invalid order
// function" it produces some permutation (the same one every run). It needs 24 bytes per element of scratch
// (counted against the memory limit) and polls the deadline every 1024 comparisons.
static int sort_less(lua_State *L, int values, int a, int b, uint64_t *comparisons) {
    if ((++*comparisons & 1023) == 0) tml_budget_poll(L);
    if (lua_isnil(L, 2)) {
        lua_rawgeti(L, values, a);
        lua_rawgeti(L, values, b);
        int less = lua_compare(L, -2, -1, LUA_OPLT);
        lua_pop(L, 2);
        return less;
    }
    lua_pushvalue(L, 2);
    lua_rawgeti(L, values, a);
    lua_rawgeti(L, values, b);
    lua_call(L, 2, 1);
    int less = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return less;
}

static int sb_sort(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (luaL_getmetafield(L, 1, "__len") != LUA_TNIL) {
        return luaL_error(L, "table.sort: tables with a __len metamethod are not supported in scripts");
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    if (n <= 1) return 0;
    luaL_argcheck(L, n < INT_MAX, 1, "array too big");
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    luaL_checkstack(L, 8, "table.sort");
    // values[i] = list[i]; the sort permutes indices into values, alternating between two index buffers.
    lua_createtable(L, (int)n, 0);
    int values = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        lua_rawseti(L, values, i);
    }
    int32_t *from = (int32_t *)lua_newuserdatauv(L, (size_t)n * sizeof(int32_t), 0);
    int32_t *to = (int32_t *)lua_newuserdatauv(L, (size_t)n * sizeof(int32_t), 0);
    for (int32_t i = 0; i < (int32_t)n; i++) from[i] = i + 1;
    uint64_t comparisons = 0;
    for (lua_Integer width = 1; width < n; width *= 2) {
        for (lua_Integer lo = 0; lo < n; lo += 2 * width) {
            lua_Integer mid = lo + width < n ? lo + width : n;
            lua_Integer hi = lo + 2 * width < n ? lo + 2 * width : n;
            lua_Integer i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                // Take from the right run only when strictly less: equal elements keep their order.
                if (sort_less(L, values, from[j], from[i], &comparisons)) to[k++] = from[j++];
                else to[k++] = from[i++];
            }
            while (i < mid) to[k++] = from[i++];
            while (j < hi) to[k++] = from[j++];
        }
        int32_t *swap = from;
        from = to;
        to = swap;
    }
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, values, from[i - 1]);
        lua_seti(L, 1, i);
    }
    return 0;
}

// setmetatable refusing __gc: finalizers run with hooks off, so a looping __gc would hang lua_close.
static int sb_setmetatable(lua_State *L) {
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL) return luaL_error(L, "__gc is not allowed in scripts");
        lua_pop(L, 1);
    }
    return call_original(L);
}

// collectgarbage("count") only: a script must not control the host's collector (the host collects).
static int sb_collectgarbage(lua_State *L) {
    const char *option = luaL_optstring(L, 1, "collect");
    if (strcmp(option, "count") != 0) {
        return luaL_error(L, "collectgarbage(\"%s\") is not allowed in scripts (only \"count\" is)", option);
    }
    int kib = lua_gc(L, LUA_GCCOUNT);
    int rest = lua_gc(L, LUA_GCCOUNTB);
    lua_pushnumber(L, (lua_Number)kib + (lua_Number)rest / 1024.0);
    return 1;
}

// Deterministic names for the values stock Lua names by address ("table: 0x55d248e4a4c0"): addresses differ
// from run to run (ASLR), and so would anything a script prints or saves from them. Such a value gets a number the
// first time it is converted to a string, counting from 1 in each state: "table: #1", "function: #2". The numbers
// live in a weak-keyed registry table (they keep nothing alive; a collected value's number is not reused), so the
// same script prints the same names in every run.
static char ids_key;

void tml_push_value_name(lua_State *L, int idx, const char *kind) {
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 4, "naming a value");
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ids_key) != LUA_TTABLE) {  // before the sandbox opened: no ids yet
        lua_pop(L, 1);
        lua_pushfstring(L, "%s: ?", kind);
        return;
    }
    lua_pushvalue(L, idx);
    lua_Integer id;
    if (lua_rawget(L, -2) == LUA_TNUMBER) {
        id = lua_tointeger(L, -1);
        lua_pop(L, 1);
    } else {
        lua_pop(L, 1);
        lua_rawgeti(L, -1, 0);  // the counter (key 0: never a weak key)
        id = lua_tointeger(L, -1) + 1;
        lua_pop(L, 1);
        lua_pushinteger(L, id);
        lua_rawseti(L, -2, 0);
        lua_pushvalue(L, idx);
        lua_pushinteger(L, id);
        lua_rawset(L, -3);
    }
    lua_pop(L, 1);
    lua_pushfstring(L, "%s: #%I", kind, (LUAI_UACINT)id);
}

// luaL_tolstring, except that tables, functions, threads and userdata without __tostring get their number.
static const char *tolstring(lua_State *L, int idx, size_t *length) {
    idx = lua_absindex(L, idx);
    int type = lua_type(L, idx);
    if (type == LUA_TTABLE || type == LUA_TFUNCTION || type == LUA_TTHREAD || type == LUA_TUSERDATA ||
        type == LUA_TLIGHTUSERDATA) {
        if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
            lua_pop(L, 1);
            return luaL_tolstring(L, idx, length);
        }
        int named = luaL_getmetafield(L, idx, "__name") == LUA_TSTRING;
        tml_push_value_name(L, idx, named ? lua_tostring(L, -1) : luaL_typename(L, idx));
        if (named) lua_remove(L, -2);
        return lua_tolstring(L, -1, length);
    }
    return luaL_tolstring(L, idx, length);
}

static int sb_tostring(lua_State *L) {
    luaL_checkany(L, 1);
    tolstring(L, 1, NULL);
    return 1;
}

// string.format: "%s" of a table, function, thread or userdata gets its deterministic name; "%p" (an address) is
// refused.
static int sb_format(lua_State *L) {
    size_t length = 0;
    const char *format = luaL_checklstring(L, 1, &length);
    int top = lua_gettop(L);
    int arg = 1;
    for (size_t i = 0; i < length; i++) {
        if (format[i] != '%') continue;
        if (++i < length && format[i] == '%') continue;
        arg++;
        while (i < length && format[i] != '\0' && strchr("-+ #0123456789.", format[i]) != NULL) i++;
        if (i >= length) break;  // the original reports the invalid conversion
        if (format[i] == 'p') {
            return luaL_error(L, "string.format: '%%p' is not allowed in scripts (addresses differ from run to run)");
        }
        if (format[i] == 's' && arg <= top) {
            int type = lua_type(L, arg);
            if (type == LUA_TTABLE || type == LUA_TFUNCTION || type == LUA_TTHREAD || type == LUA_TUSERDATA ||
                type == LUA_TLIGHTUSERDATA) {
                tolstring(L, arg, NULL);
                lua_replace(L, arg);
            }
        }
    }
    return call_original(L);
}

// print: arguments through tostring, tab-separated, one line to the host's sink.
static int sb_print(lua_State *L) {
    tml_state *S = tml_state_of(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t length = 0;
    const char *line = lua_tolstring(L, -1, &length);
    if (S->print_sink != NULL) S->print_sink(S->print_context, line, length);
    return 0;
}

// _G's __index: reading an undefined global is an error (Redis style), so typos fail where they happen.
// The libraries a script most often reaches for, `io` and `os`, stay absent (so `rawget(_G, "io") == nil` still
// holds); reading them says what to use instead. The error is raised when the name is read, before any call.
static int sb_undefined_global(lua_State *L) {
    const char *name = luaL_tolstring(L, 2, NULL);
    if (strcmp(name, "io") == 0) {
        return luaL_error(L, "undefined global 'io': io is not available in scripts: write files with "
                             "toymoe.save_json / toymoe.save_npy / toymoe.save_npz (read them with toymoe.load_json / "
                             "load_npy / load_npz; plots with toymoe.plot), and print writes to standard output");
    }
    if (strcmp(name, "os") == 0) {
        return luaL_error(L, "undefined global 'os': os is not available in scripts: write files with "
                             "toymoe.save_json / toymoe.save_npy / toymoe.save_npz, read settings with "
                             "toymoe.param (KEY=VALUE on the command line, not os.getenv), take the run's seed from "
                             "toymoe.seed (not os.time), and time a training with toymoe.train(...).seconds");
    }
    return luaL_error(L, "undefined global '%s'", name);
}

static int sb_rep(lua_State *L) {
    size_t length = 0, separator = 0;
    luaL_checklstring(L, 1, &length);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &separator);
    if (n > 0) {
        if (length == 0 && separator == 0) {
            lua_pushliteral(L, "");
            return 1;
        }
        unsigned __int128 total = (unsigned __int128)(uint64_t)n * length +
                                  (unsigned __int128)((uint64_t)n - 1) * separator;
        size_t limit = tml_state_of(L)->limits.rep_max;
        if (limit != 0 && total > limit) {
            char bytes[48];
            snprintf(bytes, sizeof bytes, "%.0f", (double)total);
            return luaL_error(L, "string.rep: a result of %s bytes exceeds the limit of %I bytes", bytes,
                              (lua_Integer)limit);
        }
    }
    return call_original(L);
}

// table.insert/remove/sort: upvalue 2 is the function's name.
static int sb_no_len(lua_State *L) {
    if (lua_type(L, 1) == LUA_TTABLE && luaL_getmetafield(L, 1, "__len") != LUA_TNIL) {
        return luaL_error(L, "%s: tables with a __len metamethod are not supported in scripts",
                          lua_tostring(L, lua_upvalueindex(2)));
    }
    return call_original(L);
}

static int sb_move(lua_State *L) {
    lua_Integer first = luaL_checkinteger(L, 2);
    lua_Integer last = luaL_checkinteger(L, 3);
    uint64_t limit = tml_state_of(L)->limits.table_move_max;
    if (limit != 0 && last >= first) {
        uint64_t count = (uint64_t)last - (uint64_t)first + 1;  // 0 only when the range spans all integers
        if (count == 0 || count > limit) {
            char elements[48];
            snprintf(elements, sizeof elements, "%.0f", count == 0 ? 18446744073709551616.0 : (double)count);
            return luaL_error(L, "table.move: moving %s elements exceeds the limit of %I", elements,
                              (lua_Integer)limit);
        }
    }
    return call_original(L);
}

static void set_nil(lua_State *L, int table, const char *name) {
    lua_pushnil(L);
    lua_setfield(L, table, name);
}

static void wrap(lua_State *L, int table, const char *name, lua_CFunction wrapper, const char *qualified) {
    lua_getfield(L, table, name);
    int upvalues = 1;
    if (qualified != NULL) {
        lua_pushstring(L, qualified);
        upvalues = 2;
    }
    lua_pushcclosure(L, wrapper, upvalues);
    lua_setfield(L, table, name);
}

// A fresh (empty) numbering: the next value named is #1 again.
static void new_value_names(lua_State *L) {
    lua_createtable(L, 0, 0);  // value -> its number (see tml_push_value_name)
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ids_key);
}

static int sandbox_k(lua_State *L) {
    static const luaL_Reg libraries[] = {
        {LUA_GNAME, luaopen_base},     {LUA_TABLIBNAME, luaopen_table}, {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math}, {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
        {NULL, NULL},
    };
    for (const luaL_Reg *lib = libraries; lib->func != NULL; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    int G = lua_gettop(L);
    set_nil(L, G, "dofile");
    set_nil(L, G, "loadfile");
    wrap(L, G, "load", sb_load, NULL);
    wrap(L, G, "setmetatable", sb_setmetatable, NULL);
    lua_pushcfunction(L, sb_collectgarbage);
    lua_setfield(L, G, "collectgarbage");
    lua_pushcfunction(L, sb_print);
    lua_setfield(L, G, "print");
    lua_pushcfunction(L, sb_tostring);
    lua_setfield(L, G, "tostring");
    new_value_names(L);

    lua_getfield(L, G, LUA_STRLIBNAME);
    int S = lua_gettop(L);
    set_nil(L, S, "dump");
    lua_pushcfunction(L, tml_str_find);
    lua_setfield(L, S, "find");
    lua_pushcfunction(L, tml_str_match);
    lua_setfield(L, S, "match");
    lua_pushcfunction(L, tml_str_gmatch);
    lua_setfield(L, S, "gmatch");
    lua_pushcfunction(L, tml_str_gsub);
    lua_setfield(L, S, "gsub");
    wrap(L, S, "rep", sb_rep, NULL);
    wrap(L, S, "format", sb_format, NULL);

    lua_getfield(L, G, LUA_TABLIBNAME);
    int T = lua_gettop(L);
    wrap(L, T, "insert", sb_no_len, "table.insert");
    wrap(L, T, "remove", sb_no_len, "table.remove");
    lua_pushcfunction(L, sb_sort);
    lua_setfield(L, T, "sort");
    wrap(L, T, "move", sb_move, NULL);

    lua_getfield(L, G, LUA_MATHLIBNAME);
    int M = lua_gettop(L);
    set_nil(L, M, "random");      // the host installs generators seeded from the run seed
    set_nil(L, M, "randomseed");

    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, sb_undefined_global);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);  // protected: scripts can neither read nor replace it
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, G);
    return 0;
}

static int reset_value_names_k(lua_State *L) {
    new_value_names(L);
    return 0;
}

int tml_reset_value_names(lua_State *L) {
    if (!lua_checkstack(L, 2)) return TML_ERRSTACK;
    lua_pushcfunction(L, reset_value_names_k);
    return lua_pcall(L, 0, 0, 0);
}

void tml_set_limits(lua_State *L, const tml_limits *limits) { tml_state_of(L)->limits = *limits; }

int tml_open_sandbox(lua_State *L, const tml_limits *limits, tml_print_sink sink, void *sink_context) {
    tml_state *S = tml_state_of(L);
    S->limits = *limits;
    S->print_sink = sink;
    S->print_context = sink_context;
    if (!lua_checkstack(L, 2)) return TML_ERRSTACK;
    lua_pushcfunction(L, sandbox_k);
    return lua_pcall(L, 0, 0, 0);
}
