/*
 * Handles, globals and registration: the entry points that compile a chunk,
 * keep or forget a function handle, read and write globals, and install a
 * host function.
 *
 * A handle is an id chosen by the host, naming a function kept in the
 * registry's handles table: Swift never holds a Lua reference, so a handle
 * outliving its state or pointing at a released function is only a failed
 * lookup (SB_BAD_HANDLE), never a dangling pointer. Globals are read and
 * written raw: the host must not run script code (a metamethod) by reading
 * a value.
 */
#include "sb_internal.h"

static int sb_load_p(lua_State *L) {
    SBOpArgs *a = (SBOpArgs *)lua_touserdata(L, 1);
    SBState *S = a->S;
    int status;
    lua_settop(L, 0);
    lua_pushfstring(L, "@%s", a->chunkname);
    status = luaL_loadbufferx(L, a->src, a->len, lua_tostring(L, 1), "t");
    if (status == LUA_OK) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, S->handles_ref);
        lua_insert(L, -2);
        lua_rawseti(L, -2, (lua_Integer)a->id);
        a->result = SB_OK;
    } else if (status == LUA_ERRMEM) {
        sb_set_abort_at(S, NULL, SB_ABORT_MEMORY);
        a->result = SB_ABORT;
    } else {
        int bad = 0;
        S->out.len = 0;
        if (lua_type(L, -1) != LUA_TSTRING)
            lua_pushliteral(L, "syntax error");
        sb_encode(S, L, lua_gettop(L), 1, 0, &bad);
        a->result = SB_SYNTAX;
    }
    return 0;
}

int sb_load(SBState *S, const char *source, size_t len, const char *chunkname, int64_t id) {
    SBOpArgs a = {.src = source, .len = len, .chunkname = chunkname, .id = id};
    return sb_op(S, sb_load_p, &a, SB_OP_LIVE);
}

static int sb_release_p(lua_State *L) {
    SBOpArgs *a = (SBOpArgs *)lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->S->handles_ref);
    lua_pushnil(L);
    lua_rawseti(L, -2, (lua_Integer)a->id);
    return 0;
}

int sb_release(SBState *S, int64_t id) {
    SBOpArgs a = {.id = id};
    if (S->closed)
        return SB_OK; /* closing released everything */
    return sb_op(S, sb_release_p, &a, SB_OP_ANY);
}

static int sb_register_p(lua_State *L) {
    SBOpArgs *a = (SBOpArgs *)lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_pushglobaltable(L);
    if (a->table != NULL) {
        lua_pushstring(L, a->table);
        if (lua_rawget(L, 1) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushstring(L, a->table);
            lua_pushvalue(L, -2);
            lua_rawset(L, 1);
        }
    } else
        lua_pushvalue(L, 1);
    /* stack: G, target */
    lua_pushstring(L, a->name);
    lua_pushinteger(L, a->id);
    lua_pushboolean(L, a->flag);
    if (a->table != NULL)
        lua_pushfstring(L, "%s.%s", a->table, a->name);
    else
        lua_pushstring(L, a->name);
    lua_pushcclosure(L, sb_trampoline, 3);
    lua_rawset(L, 2);
    lua_settop(L, 0);
    return 0;
}

int sb_register(SBState *S, const char *table, const char *name, int id, int is_async) {
    SBOpArgs a = {.table = table, .name = name, .id = id, .flag = is_async};
    return sb_op(S, sb_register_p, &a, SB_OP_LIVE);
}

static int sb_set_global_p(lua_State *L) {
    SBOpArgs *a = (SBOpArgs *)lua_touserdata(L, 1);
    size_t off = 0;
    lua_settop(L, 0);
    lua_pushglobaltable(L);
    lua_pushstring(L, a->name);
    sb_decode(L, a->S, &a->S->in, &off, 1);
    lua_rawset(L, 1);
    lua_settop(L, 0);
    return 0;
}

int sb_set_global(SBState *S, const char *name) {
    SBOpArgs a = {.name = name};
    return sb_op(S, sb_set_global_p, &a, SB_OP_LIVE);
}

static int sb_get_global_p(lua_State *L) {
    SBOpArgs *a = (SBOpArgs *)lua_touserdata(L, 1);
    int bad = 0;
    lua_settop(L, 0);
    lua_pushglobaltable(L);
    lua_pushstring(L, a->name);
    lua_rawget(L, 1);
    a->S->out.len = 0;
    a->result = sb_encode(a->S, L, 2, 1, 0, &bad) == SB_CONV_OK ? SB_OK : SB_CONVERSION;
    lua_settop(L, 0);
    return 0;
}

int sb_get_global(SBState *S, const char *name) {
    SBOpArgs a = {.name = name};
    return sb_op(S, sb_get_global_p, &a, SB_OP_LIVE);
}

static int sb_ref_global_p(lua_State *L) {
    SBOpArgs *a = (SBOpArgs *)lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_pushglobaltable(L);
    lua_pushstring(L, a->name);
    if (lua_rawget(L, 1) != LUA_TFUNCTION) {
        a->result = SB_BAD_HANDLE;
        return 0;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->S->handles_ref);
    lua_insert(L, -2);
    lua_rawseti(L, -2, (lua_Integer)a->id);
    a->result = SB_OK;
    return 0;
}

int sb_ref_global(SBState *S, const char *name, int64_t id) {
    SBOpArgs a = {.name = name, .id = id};
    return sb_op(S, sb_ref_global_p, &a, SB_OP_LIVE);
}
