/*
 * The sandboxed base library: lbaselib's pcall, xpcall, setmetatable,
 * collectgarbage and load, replaced.
 *
 * pcall/xpcall/load are the places where a script could catch an error, so
 * they rethrow an abort instead of returning it (an abort must end the run);
 * xpcall's handler is skipped once aborting, since it could loop with the
 * hooks off. setmetatable refuses __gc (finalizers run outside any run's
 * budget, and at close), collectgarbage only reports (a script must not
 * steer the collector of a shared state), load only takes text (binary
 * chunks can crash the VM). dofile/loadfile/print/warn/require reach the
 * file system or stdio and are removed.
 */
#include <string.h>

#include "sb_internal.h"

static int sb_finishpcall(lua_State *L, int status, lua_KContext extra) {
    if (status != LUA_OK && status != LUA_YIELD) {
        sb_rethrow_if_aborting(L, status);
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - (int)extra;
}

static int sb_pcall(lua_State *L) {
    int status;
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, sb_finishpcall);
    return sb_finishpcall(L, status, 0);
}

/* The message handler installed by xpcall: skips the script's handler once
 * the run is aborting (it could loop with hooks disabled). */
static int sb_msgh(lua_State *L) {
    SBState *S = sb_state_of(L);
    if (S->aborting)
        return 1; /* keep the error value as is */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int sb_xpcall(lua_State *L) {
    int status;
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, sb_msgh, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2);
    status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, sb_finishpcall);
    return sb_finishpcall(L, status, 2);
}

static int sb_setmetatable(lua_State *L) {
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed in the sandbox");
        lua_pop(L, 1);
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

static int sb_collectgarbage(lua_State *L) {
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage(\"%s\") is not allowed in the sandbox (only \"count\")", opt);
    {
        int k = lua_gc(L, LUA_GCCOUNT);
        int b = lua_gc(L, LUA_GCCOUNTB);
        lua_pushnumber(L, (lua_Number)k + ((lua_Number)b / 1024));
    }
    return 1;
}

#define RESERVEDSLOT 5

static const char *sb_generic_reader(lua_State *L, void *ud, size_t *size) {
    (void)ud;
    luaL_checkstack(L, 2, "too many nested functions");
    lua_pushvalue(L, 1);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        *size = 0;
        return NULL;
    } else if (!lua_isstring(L, -1))
        luaL_error(L, "reader function must return a string");
    lua_replace(L, RESERVEDSLOT);
    return lua_tolstring(L, RESERVEDSLOT, size);
}

/* load(chunk [, chunkname [, mode [, env]]]): text only ("t"), whatever
 * mode is asked; without env the chunk sees the state's globals. */
static int sb_load_lua(lua_State *L) {
    int status;
    size_t l;
    const char *s = lua_tolstring(L, 1, &l);
    int env = (!lua_isnone(L, 4) ? 4 : 0);
    (void)luaL_optstring(L, 3, "t");
    if (s != NULL) {
        const char *chunkname = luaL_optstring(L, 2, s);
        status = luaL_loadbufferx(L, s, l, chunkname, "t");
    } else {
        const char *chunkname = luaL_optstring(L, 2, "=(load)");
        luaL_checktype(L, 1, LUA_TFUNCTION);
        lua_settop(L, RESERVEDSLOT);
        status = lua_load(L, sb_generic_reader, NULL, chunkname, "t");
    }
    if (status == LUA_OK) {
        if (env != 0) {
            lua_pushvalue(L, env);
            if (!lua_setupvalue(L, -2, 1))
                lua_pop(L, 1);
        }
        return 1;
    }
    sb_rethrow_if_aborting(L, status);
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
}

/* lbaselib functions a script must not reach. */
static const char *const sb_base_removed[] = {"dofile", "loadfile", "print", "warn", "require", NULL};

static const luaL_Reg sb_base_funcs[] = {
    {"pcall", sb_pcall},
    {"xpcall", sb_xpcall},
    {"setmetatable", sb_setmetatable},
    {"collectgarbage", sb_collectgarbage},
    {"load", sb_load_lua},
    {NULL, NULL}
};

void sb_open_base(lua_State *L) {
    lua_pushglobaltable(L);
    sb_remove_fields(L, sb_base_removed);
    luaL_setfuncs(L, sb_base_funcs, 0);
    lua_pop(L, 1);
}
