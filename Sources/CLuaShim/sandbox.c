// The script sandbox: which libraries a script sees, and wrappers that keep single C calls bounded.
//
// The count hook interrupts Lua code, but not one long C call. So every library function whose work is not bounded
// by its input size times a small constant, or by the memory limit, is capped here:
//   string.find/match/gmatch/gsub  own matcher (patterns.c): subject and pattern length caps plus a step budget
//                                  that also polls the deadline (a backtracking pattern is exponential otherwise)
//   string.rep                     result length cap (and string.rep("", huge) returns "" instead of looping)
//   table.move                     element count cap (moving nils into an empty table allocates nothing)
//   table.insert/remove/sort       refuse tables with __len (a lying __len makes them loop without allocating)
// Everything else either runs Lua code (hooked), or allocates as it goes (stopped by the memory limit).
#include "internal.h"

#include <stdio.h>
#include <string.h>

// Runs the original library function (upvalue 1, a C function without upvalues) in this call's frame, so its
// errors name the script's line and the function as the script called it ("bad argument #1 to 'setmetatable'").
static int call_original(lua_State *L) {
    lua_CFunction original = lua_tocfunction(L, lua_upvalueindex(1));
    return original(L);
}

// load(chunk [, chunkname [, mode [, env]]]) with mode forced to "t": binary chunks can crash the VM.
static int sb_load(lua_State *L) {
    if (lua_gettop(L) < 3) lua_settop(L, 3);  // env stays absent (an explicit nil env would be used as _ENV)
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    return call_original(L);
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

// print: arguments through tostring, tab-separated, one line to the host's sink.
static int sb_print(lua_State *L) {
    tml_state *S = tml_state_of(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t length = 0;
    const char *line = lua_tolstring(L, -1, &length);
    if (S->print_sink != NULL) S->print_sink(S->print_context, line, length);
    return 0;
}

// _G's __index: reading an undefined global is an error (Redis style), so typos fail where they happen.
static int sb_undefined_global(lua_State *L) {
    return luaL_error(L, "undefined global '%s'", luaL_tolstring(L, 2, NULL));
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

    lua_getfield(L, G, LUA_TABLIBNAME);
    int T = lua_gettop(L);
    wrap(L, T, "insert", sb_no_len, "table.insert");
    wrap(L, T, "remove", sb_no_len, "table.remove");
    wrap(L, T, "sort", sb_no_len, "table.sort");
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
