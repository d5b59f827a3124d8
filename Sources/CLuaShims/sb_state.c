/*
 * The state: creating the sandboxed lua_State (which libraries, with which
 * functions replaced or removed), closing and freeing it, its settings and
 * accessors, its buffers, and the protected call every public entry point
 * goes through.
 *
 * The library setup is one place on purpose: what a script can reach is the
 * security boundary, and it should be readable in one screen (the table in
 * docs/LUASANDBOX.md, "What a script can reach", describes the result).
 * sb_protected/sb_op exist because Swift may call nothing that raises: all
 * Lua work of an entry point runs under lua_pcall on the main thread.
 */
#include <stdlib.h>
#include <string.h>

#include "sb_internal.h"

/* string: dump is removed (bytecode: load refuses it anyway, and it would
 * expose function internals); the matcher is replaced by the step-counted
 * ports, since the stock one cannot be interrupted; rep is wrapped. */
static const char *const sb_string_removed[] = {"dump", NULL};

static const luaL_Reg sb_string_funcs[] = {
    {"find", sb_str_find},
    {"match", sb_str_match},
    {"gmatch", sb_str_gmatch},
    {"gsub", sb_str_gsub},
    {NULL, NULL}
};

/* string.rep (upvalue 1: the stock one). The stock rep loops `n` times even
 * when the result is empty, so string.rep("", 1e15) would hold the state for
 * days inside one C call: an empty result is answered at once. Anything else
 * goes to the stock rep, whose one allocation of the whole result is charged
 * to the budget (sb_alloc) and bounded by the memory ceiling. */
static int sb_str_rep(lua_State *L) {
    size_t l, lsep;
    lua_Integer n;
    (void)luaL_checklstring(L, 1, &l);
    n = luaL_checkinteger(L, 2);
    (void)luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || (l == 0 && (lsep == 0 || n == 1))) {
        lua_pushliteral(L, "");
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static void sb_open_string(lua_State *L) {
    lua_getglobal(L, LUA_STRLIBNAME);
    sb_remove_fields(L, sb_string_removed);
    luaL_setfuncs(L, sb_string_funcs, 0);
    lua_getfield(L, -1, "rep");
    lua_pushcclosure(L, sb_str_rep, 1);
    lua_setfield(L, -2, "rep");
    lua_pop(L, 1);
    /* protect the string metatable: it is shared by every string of the
     * state, so changing it would change every rule's strings */
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* os: only what reads the clock; the rest reaches the process or the file
 * system. A new table, also in LOADED, so that no path leads to the old one. */
static const char *const sb_os_kept[] = {"time", "clock", "date", NULL};

static void sb_open_os(lua_State *L) {
    const char *const *name;
    int t;
    lua_getglobal(L, LUA_OSLIBNAME);
    t = lua_gettop(L);
    lua_createtable(L, 0, 3);
    for (name = sb_os_kept; *name != NULL; name++) {
        lua_getfield(L, t, *name);
        lua_setfield(L, -2, *name);
    }
    lua_pushvalue(L, -1);
    lua_setglobal(L, LUA_OSLIBNAME);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_insert(L, -2);
    lua_setfield(L, -2, LUA_OSLIBNAME);
    lua_pop(L, 2);
}

static int sb_open_p(lua_State *L) {
    SBState *S = (SBState *)lua_touserdata(L, 1);
    lua_settop(L, 0);

    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 1);
    lua_settop(L, 0);

    sb_open_base(L);
    sb_open_string(L);
    sb_open_table(L);
    sb_open_coroutine(L);
    sb_open_os(L);

    /* host tables */
    lua_newtable(L);
    S->handles_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    S->threads_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L); /* set of empty arrays made by the host (weak keys) */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    S->emptyarr_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    lua_settop(L, 0);
    return 0;
}

static int sb_panic(lua_State *L) {
    /* Never reached by design: every raising call runs under protection. */
    (void)L;
    abort();
    return 0;
}

/* Runs f(ud) under lua_pcall on the main thread and returns the status,
 * with the stack emptied. */
static int sb_protected(SBState *S, lua_CFunction f, void *ud) {
    lua_State *L = S->L;
    int status;
    lua_settop(L, 0);
    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, ud);
    status = lua_pcall(L, 1, 0, 0);
    if (status == LUA_ERRMEM)
        sb_set_abort_at(S, NULL, SB_ABORT_MEMORY);
    lua_settop(L, 0);
    return status;
}

int sb_op(SBState *S, lua_CFunction op, SBOpArgs *a, int mode) {
    if (S->closed)
        return SB_ERROR;
    if (mode == SB_OP_LIVE && S->aborting)
        return SB_ABORT;
    a->S = S;
    if (op != NULL && sb_protected(S, op, a) != LUA_OK)
        return (mode == SB_OP_LIVE && S->aborting) ? SB_ABORT : SB_ERROR;
    return a->result;
}

SBState *sb_open(size_t memory_limit, uint32_t hook_interval, void *ctx, SBHostCallback callback) {
    SBState *S = (SBState *)calloc(1, sizeof(SBState));
    if (S == NULL)
        return NULL;
    S->mem_limit = memory_limit;
    S->hook_interval = hook_interval == 0 ? 1000 : hook_interval;
    S->ctx = ctx;
    S->callback = callback;
    S->conv.max_depth = 100;
    S->conv.max_nodes = 1000000;
    S->conv.max_bytes = 64u << 20;
    S->handles_ref = S->threads_ref = S->emptyarr_ref = LUA_NOREF;
    S->L = lua_newstate(sb_alloc, S);
    if (S->L == NULL) {
        free(S);
        return NULL;
    }
    lua_atpanic(S->L, sb_panic);
    SB_TFLAGS(S->L) = 0;
    if (sb_protected(S, sb_open_p, S) != LUA_OK) {
        lua_close(S->L);
        free(S);
        return NULL;
    }
    /* new threads inherit the hook from the thread that creates them */
    lua_sethook(S->L, sb_hook, LUA_MASKCOUNT, (int)S->hook_interval);
    return S;
}

void sb_close(SBState *S) {
    if (S == NULL || S->closed)
        return;
    S->closed = 1;
    lua_close(S->L);
    S->L = NULL;
    S->pool_n = 0;
}

void sb_free(SBState *S) {
    if (S == NULL)
        return;
    sb_close(S);
    free(S->in.data);
    free(S->out.data);
    free(S->retain);
    free(S);
}

int sb_is_closed(const SBState *S) { return S->closed; }
void sb_set_hook_interval(SBState *S, uint32_t interval) {
    int i;
    interval = interval == 0 ? 1000 : (interval > 0x7fffffff ? 0x7fffffff : interval);
    if (interval == S->hook_interval || S->closed)
        return;
    S->hook_interval = interval;
    lua_sethook(S->L, sb_hook, LUA_MASKCOUNT, (int)interval); /* new threads inherit it */
    for (i = 0; i < S->pool_n; i++)
        lua_sethook(S->pool_threads[i], sb_hook, LUA_MASKCOUNT, (int)interval);
}
void sb_set_conv_limits(SBState *S, SBConvLimits limits) {
    if (limits.max_depth > SB_MAX_DEPTH_CAP)
        limits.max_depth = SB_MAX_DEPTH_CAP;
    S->conv = limits;
}
SBBuffer *sb_inbuf(SBState *S) { return &S->in; }
SBBuffer *sb_outbuf(SBState *S) { return &S->out; }
int sb_conversion_code(const SBState *S) { return S->conv_code; }
const char *sb_conversion_path(const SBState *S) { return S->conv_path; }
const char *sb_conversion_detail(const SBState *S) { return S->conv_detail; }

void sb_buffer_free(SBBuffer *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int sb_buffer_reserve(SBBuffer *b, size_t extra) {
    size_t need = b->len + extra;
    if (need < b->len)
        return 0;
    if (need <= b->cap)
        return 1;
    {
        size_t cap = b->cap < 256 ? 256 : b->cap;
        unsigned char *p;
        while (cap < need) {
            if (cap > ((size_t)-1) / 2)
                return 0;
            cap *= 2;
        }
        p = (unsigned char *)realloc(b->data, cap);
        if (p == NULL)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    return 1;
}

