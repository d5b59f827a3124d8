/*
 * The sandboxed Lua state: allocator, limits, sandboxed library, host-call
 * trampoline and the run (coroutine) machinery.
 *
 * Rules kept here (see docs/LUASANDBOX.md):
 *  - every function called by Swift is non-raising: work that may raise runs
 *    under lua_pcall on the main thread, or inside a lua_CFunction called by
 *    Lua (so a longjmp only ever crosses C frames);
 *  - an abort (memory / instructions / deadline) is sticky: S->aborting is
 *    set, and every C function that can catch an error rethrows once it is
 *    set, so no script code can swallow it.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_internal.h"

/* The error value raised by instruction/deadline aborts. */
static char sb_abort_sentinel;

/* ================================================================== */
/* Clock, aborts, budget                                               */
/* ================================================================== */

uint64_t sb_now_ns(void) {
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    /* a few ms of resolution is plenty for deadlines, and it is ~5x cheaper */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Records the first Lua frame of L as the abort location. Non-raising. */
static void sb_record_location(SBState *S, lua_State *L) {
    lua_Debug ar;
    int level;
    S->abort_src[0] = '\0';
    S->abort_line = 0;
    for (level = 0; level < 64 && lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            strncpy(S->abort_src, ar.short_src, sizeof S->abort_src - 1);
            S->abort_src[sizeof S->abort_src - 1] = '\0';
            S->abort_line = ar.currentline;
            return;
        }
    }
}

void sb_set_abort_at(SBState *S, lua_State *L, int reason) {
    if (S->aborting)
        return;
    S->aborting = reason;
    if (L != NULL)
        sb_record_location(S, L);
}

int sb_raise_abort(lua_State *L) {
    if (!lua_checkstack(L, 1) && lua_gettop(L) > 0)
        lua_pop(L, 1); /* make room for the error value */
    lua_pushlightuserdata(L, &sb_abort_sentinel);
    return lua_error(L);
}

/* Charges `steps` to the run's budget; raises the abort when a limit is hit
 * (or the state is already aborting). Only from C functions called by Lua. */
void sb_charge(lua_State *L, int64_t steps) {
    SBState *S = sb_state_of(L);
    if (!S->aborting) {
        S->remaining -= steps;
        if (S->remaining < 0)
            sb_set_abort_at(S, L, SB_ABORT_INSTRUCTIONS);
        else if (S->deadline_ns != 0 && sb_now_ns() >= S->deadline_ns)
            sb_set_abort_at(S, L, SB_ABORT_DEADLINE);
        else
            return;
    }
    sb_raise_abort(L);
}

void sb_charge_lazy(lua_State *L, int64_t steps) {
    SBState *S = sb_state_of(L);
    S->remaining -= steps;
}

/* The count hook: every `hook_interval` VM instructions, in every thread. */
static void sb_hook(lua_State *L, lua_Debug *ar) {
    SBState *S = sb_state_of(L);
    (void)ar;
    if (!S->aborting) {
        S->remaining -= S->hook_interval;
        if (S->remaining < 0)
            sb_set_abort_at(S, L, SB_ABORT_INSTRUCTIONS);
        else if (S->deadline_ns != 0 && sb_now_ns() >= S->deadline_ns)
            sb_set_abort_at(S, L, SB_ABORT_DEADLINE);
        else
            return;
    }
    sb_raise_abort(L);
}

/* After a protected call inside the sandbox returned `status` (an error
 * with its value on top): rethrow if the run is aborting. */
static void sb_rethrow_if_aborting(lua_State *L, int status) {
    SBState *S = sb_state_of(L);
    if (status == LUA_ERRMEM)
        sb_set_abort_at(S, L, SB_ABORT_MEMORY);
    if (S->aborting)
        lua_error(L);
}

/* ================================================================== */
/* Allocator                                                           */
/* ================================================================== */

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    SBState *S = (SBState *)ud;
    if (ptr == NULL)
        osize = 0; /* osize then encodes the object type */
    if (nsize == 0) {
        free(ptr);
        S->mem_used -= osize;
        return NULL;
    }
    if (nsize > osize) {
        size_t grow = nsize - osize;
        if (S->mem_used > S->mem_limit || grow > S->mem_limit - S->mem_used)
            return NULL; /* over the ceiling: Lua raises LUA_ERRMEM */
    }
    {
        void *np = realloc(ptr, nsize);
        if (np == NULL)
            return NULL;
        S->mem_used = S->mem_used - osize + nsize;
        if (S->mem_used > S->mem_peak)
            S->mem_peak = S->mem_used;
        return np;
    }
}

/* ================================================================== */
/* Sandboxed base library                                              */
/* ================================================================== */

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

/* ================================================================== */
/* Sandboxed coroutine library                                         */
/* ================================================================== */

enum { SB_KIND_RESUME = 0, SB_KIND_WRAP = 1 };

static int sb_co_step(lua_State *L, lua_State *co, int narg, int kind);

static int sb_co_cont(lua_State *L, int status, lua_KContext ctx) {
    int kind = (int)ctx;
    lua_State *co = (kind == SB_KIND_WRAP) ? lua_tothread(L, lua_upvalueindex(1)) : lua_tothread(L, 1);
    (void)status;
    SB_TFLAGS(L) &= ~(uintptr_t)SB_TF_WAIT;
    SB_TFLAGS(co) &= ~(uintptr_t)SB_TF_WAIT;
    return sb_co_step(L, co, 0, kind);
}

static void sb_set_reject(SBState *S, const char *msg) {
    size_t len = strlen(msg);
    S->in.len = 0;
    if (sb_buffer_reserve(&S->in, len + 10)) {
        uint64_t l64 = len;
        S->in.data[0] = SB_TAG_STRING;
        memcpy(S->in.data + 1, &l64, 8);
        memcpy(S->in.data + 9, msg, len);
        S->in.data[9 + len] = '\0';
        S->in.len = len + 10;
    }
    S->host_result = SB_HOST_RESULT_REJECT;
    S->host_nresults = 0;
}

static int sb_co_finish(lua_State *L, lua_State *co, int status, int nres, int kind) {
    SBState *S = sb_state_of(L);
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            goto error;
        }
        lua_xmove(co, L, nres);
        if (kind == SB_KIND_RESUME) {
            lua_pushboolean(L, 1);
            lua_insert(L, -(nres + 1));
            return nres + 1;
        }
        return nres;
    }
    /* the coroutine failed */
    if (status == LUA_ERRMEM)
        sb_set_abort_at(S, co, SB_ABORT_MEMORY);
    if (S->aborting) {
        lua_xmove(co, L, 1);
        return lua_error(L);
    }
    if (kind == SB_KIND_WRAP) {
        int stat = lua_resetthread(co); /* close its tbc variables */
        lua_xmove(co, L, 1);
        sb_rethrow_if_aborting(L, stat);
        if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        return lua_error(L);
    }
    lua_xmove(co, L, 1);
error:
    if (kind == SB_KIND_WRAP)
        return lua_error(L);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

/* Resumes co (narg values already moved onto it). Async host calls made
 * inside co are propagated: this thread yields to its own resumer (marked
 * as waiting), and when the host answers, the continuation resumes co,
 * whose trampoline continuation delivers the answer. */
static int sb_co_step(lua_State *L, lua_State *co, int narg, int kind) {
    SBState *S = sb_state_of(L);
    for (;;) {
        int nres = 0;
        int status = lua_resume(co, L, narg, &nres);
        if (status == LUA_YIELD && S->host_yield) {
            if (lua_isyieldable(L)) {
                SB_TFLAGS(co) |= SB_TF_WAIT;
                SB_TFLAGS(L) |= SB_TF_WAIT;
                return lua_yieldk(L, 0, (lua_KContext)kind, sb_co_cont);
            }
            /* this thread cannot be suspended: refuse the host call */
            S->host_yield = 0;
            sb_set_reject(S, "an async host function cannot be called here "
                             "(inside a metamethod, iterator, sort comparator "
                             "or other call made from C)");
            narg = 0;
            continue;
        }
        return sb_co_finish(L, co, status, nres, kind);
    }
}

static lua_State *sb_getco(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "thread");
    return co;
}

static int sb_co_resume(lua_State *L) {
    lua_State *co = sb_getco(L);
    int narg = lua_gettop(L) - 1;
    if (SB_TFLAGS(co) & (SB_TF_OWNED | SB_TF_WAIT)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "cannot resume a coroutine owned by the host");
        return 2;
    }
    if (!lua_checkstack(co, narg)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "too many arguments to resume");
        return 2;
    }
    lua_xmove(L, co, narg);
    return sb_co_step(L, co, narg, SB_KIND_RESUME);
}

static int sb_co_auxwrap(lua_State *L) {
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int narg = lua_gettop(L);
    if (SB_TFLAGS(co) & (SB_TF_OWNED | SB_TF_WAIT))
        return luaL_error(L, "cannot resume a coroutine owned by the host");
    if (!lua_checkstack(co, narg))
        return luaL_error(L, "too many arguments to resume");
    lua_xmove(L, co, narg);
    return sb_co_step(L, co, narg, SB_KIND_WRAP);
}

static int sb_co_wrap(lua_State *L) {
    lua_State *NL;
    luaL_checktype(L, 1, LUA_TFUNCTION);
    NL = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, NL, 1);
    lua_pushcclosure(L, sb_co_auxwrap, 1);
    return 1;
}

/* Status of co as seen from L (as lcorolib's auxstatus). */
enum { SB_COS_RUN, SB_COS_DEAD, SB_COS_YIELD, SB_COS_NORM };

static int sb_costatus(lua_State *L, lua_State *co) {
    if (L == co)
        return SB_COS_RUN;
    switch (lua_status(co)) {
    case LUA_YIELD:
        return SB_COS_YIELD;
    case LUA_OK: {
        lua_Debug ar;
        if (lua_getstack(co, 0, &ar))
            return SB_COS_NORM;
        else if (lua_gettop(co) == 0)
            return SB_COS_DEAD;
        else
            return SB_COS_YIELD; /* initial state */
    }
    default:
        return SB_COS_DEAD; /* some error */
    }
}

/* coroutine.close (lcorolib's, plus): refuses host coroutines and rethrows
 * an abort (or a memory error) raised by a __close metamethod. */
static int sb_co_close(lua_State *L) {
    static const char *const statname[] = {"running", "dead", "suspended", "normal"};
    lua_State *co = sb_getco(L);
    int st;
    if (SB_TFLAGS(co) & (SB_TF_OWNED | SB_TF_WAIT))
        return luaL_error(L, "cannot close a coroutine owned by the host");
    st = sb_costatus(L, co);
    if (st == SB_COS_DEAD || st == SB_COS_YIELD) {
        int status = lua_resetthread(co);
        if (status == LUA_OK) {
            lua_pushboolean(L, 1);
            return 1;
        }
        lua_pushboolean(L, 0);
        lua_xmove(co, L, 1);
        sb_rethrow_if_aborting(L, status);
        return 2;
    }
    return luaL_error(L, "cannot close a %s coroutine", statname[st]);
}

/* ================================================================== */
/* table.sort: every comparison is charged to the budget               */
/* ================================================================== */

static int sb_sort_cmp(lua_State *L) {
    sb_charge(L, 4);
    if (lua_isnil(L, lua_upvalueindex(1))) {
        lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

/* upvalue 1: the stock table.sort */
static int sb_tab_sort(lua_State *L) {
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_pushcclosure(L, sb_sort_cmp, 1); /* the comparator becomes its upvalue */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 0);
    return 0;
}

/* ================================================================== */
/* Host-function trampoline                                            */
/* ================================================================== */

static int sb_push_inbuf_values(lua_State *L, SBState *S, int n) {
    size_t off = 0;
    luaL_checkstack(L, n + 1, "too many results from host function");
    sb_decode(L, S, &S->in, &off, n);
    return n;
}

static int sb_raise_inbuf_message(lua_State *L, SBState *S) {
    size_t off = 0;
    if (S->in.len > 0) {
        sb_decode(L, S, &S->in, &off, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            lua_pushliteral(L, "host function failed");
        }
    } else
        lua_pushliteral(L, "host function failed");
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
    return lua_error(L);
}

static int sb_host_cont(lua_State *L, int status, lua_KContext ctx) {
    SBState *S = sb_state_of(L);
    (void)status;
    (void)ctx;
    SB_TFLAGS(L) &= ~(uintptr_t)SB_TF_WAIT;
    if (S->aborting)
        return sb_raise_abort(L);
    if (S->host_result == SB_HOST_RESULT_OK)
        return sb_push_inbuf_values(L, S, S->host_nresults);
    return sb_raise_inbuf_message(L, S);
}

static int sb_retain_ensure(SBState *S, int n) {
    if (n <= S->retain_cap)
        return 1;
    {
        int cap = n < 16 ? 16 : n;
        int64_t *p = (int64_t *)realloc(S->retain, sizeof(int64_t) * (size_t)cap);
        if (p == NULL)
            return 0;
        S->retain = p;
        S->retain_cap = cap;
    }
    return 1;
}

int64_t *sb_retain_slots(SBState *S) { return S->retain; }

/* Upvalues: 1 function id, 2 is_async, 3 qualified name. */
static int sb_trampoline(lua_State *L) {
    SBState *S = sb_state_of(L);
    int id = (int)lua_tointeger(L, lua_upvalueindex(1));
    int is_async = lua_toboolean(L, lua_upvalueindex(2));
    const char *name = lua_tostring(L, lua_upvalueindex(3));
    int nargs = lua_gettop(L);
    int nres = 0, rc, bad = 0, i;
    if (S->aborting)
        return sb_raise_abort(L);
    if (is_async && !lua_isyieldable(L))
        return luaL_error(L, "async host function '%s' cannot be called here "
                             "(not inside a run, or inside a metamethod, iterator, "
                             "sort comparator or other call made from C)", name);
    if (!sb_retain_ensure(S, nargs))
        return luaL_error(L, "host out of memory");
    if (nargs > 0)
        memset(S->retain, 0, sizeof(int64_t) * (size_t)nargs);
    S->out.len = 0;
    rc = sb_encode(S, L, 1, nargs, 1, &bad);
    if (rc != SB_CONV_OK) {
        char msg[512];
        sb_conv_message(S, msg, sizeof msg);
        return luaL_error(L, "bad argument #%d to '%s' (%s)", bad + 1, name, msg);
    }
    if (S->callback == NULL)
        return luaL_error(L, "host function '%s' is not available", name);
    rc = S->callback(S->ctx, id, nargs, &nres);
    if (!is_async) {
        /* keep the function arguments the host asked to keep */
        for (i = 0; i < nargs; i++) {
            if (S->retain[i] > 0 && lua_type(L, i + 1) == LUA_TFUNCTION) {
                lua_rawgeti(L, LUA_REGISTRYINDEX, S->handles_ref);
                lua_pushvalue(L, i + 1);
                lua_rawseti(L, -2, (lua_Integer)S->retain[i]);
                lua_pop(L, 1);
            }
        }
    }
    switch (rc) {
    case SB_HOST_RESULT_OK:
        return sb_push_inbuf_values(L, S, nres);
    case SB_HOST_RESULT_YIELD:
        S->host_yield = 1;
        SB_TFLAGS(L) |= SB_TF_WAIT;
        return lua_yieldk(L, 0, 0, sb_host_cont);
    default:
        return sb_raise_inbuf_message(L, S);
    }
}

/* ================================================================== */
/* State creation                                                      */
/* ================================================================== */

static void sb_setfunc(lua_State *L, int tidx, const char *name, lua_CFunction f) {
    lua_pushcfunction(L, f);
    lua_setfield(L, tidx, name);
}

static void sb_clear(lua_State *L, int tidx, const char *name) {
    lua_pushnil(L);
    lua_setfield(L, tidx, name);
}

static int sb_open_p(lua_State *L) {
    SBState *S = (SBState *)lua_touserdata(L, 1);
    int g, t;
    lua_settop(L, 0);

    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 1);
    lua_settop(L, 0);

    lua_pushglobaltable(L);
    g = lua_gettop(L);

    /* base */
    sb_clear(L, g, "dofile");
    sb_clear(L, g, "loadfile");
    sb_clear(L, g, "print");
    sb_clear(L, g, "warn");
    sb_clear(L, g, "require");
    sb_setfunc(L, g, "pcall", sb_pcall);
    sb_setfunc(L, g, "xpcall", sb_xpcall);
    sb_setfunc(L, g, "setmetatable", sb_setmetatable);
    sb_setfunc(L, g, "collectgarbage", sb_collectgarbage);
    sb_setfunc(L, g, "load", sb_load_lua);

    /* string */
    lua_getfield(L, g, LUA_STRLIBNAME);
    t = lua_gettop(L);
    sb_clear(L, t, "dump");
    sb_setfunc(L, t, "find", sb_str_find);
    sb_setfunc(L, t, "match", sb_str_match);
    sb_setfunc(L, t, "gmatch", sb_str_gmatch);
    sb_setfunc(L, t, "gsub", sb_str_gsub);
    lua_pop(L, 1);
    /* protect the string metatable */
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);

    /* table */
    lua_getfield(L, g, LUA_TABLIBNAME);
    t = lua_gettop(L);
    sb_setfunc(L, t, "insert", sb_tab_insert);
    sb_setfunc(L, t, "remove", sb_tab_remove);
    sb_setfunc(L, t, "move", sb_tab_move);
    sb_setfunc(L, t, "concat", sb_tab_concat);
    lua_getfield(L, t, "sort");
    lua_pushcclosure(L, sb_tab_sort, 1);
    lua_setfield(L, t, "sort");
    lua_pop(L, 1);

    /* coroutine */
    lua_getfield(L, g, LUA_COLIBNAME);
    t = lua_gettop(L);
    sb_setfunc(L, t, "resume", sb_co_resume);
    sb_setfunc(L, t, "wrap", sb_co_wrap);
    sb_setfunc(L, t, "close", sb_co_close);
    lua_pop(L, 1);

    /* os: time, clock, date only (a new table, also in LOADED) */
    lua_getfield(L, g, LUA_OSLIBNAME);
    t = lua_gettop(L);
    lua_createtable(L, 0, 3);
    lua_getfield(L, t, "time");
    lua_setfield(L, -2, "time");
    lua_getfield(L, t, "clock");
    lua_setfield(L, -2, "clock");
    lua_getfield(L, t, "date");
    lua_setfield(L, -2, "date");
    lua_pushvalue(L, -1);
    lua_setfield(L, g, LUA_OSLIBNAME);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_insert(L, -2);
    lua_setfield(L, -2, LUA_OSLIBNAME);
    lua_pop(L, 2);

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

/* Runs f(ud) under lua_pcall on the main thread. Returns the status; an
 * error value is left on the stack only if keep_error. */
static int sb_protected(SBState *S, lua_CFunction f, void *ud, int keep_error) {
    lua_State *L = S->L;
    int status;
    lua_settop(L, 0);
    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, ud);
    status = lua_pcall(L, 1, 0, 0);
    if (status == LUA_ERRMEM)
        sb_set_abort_at(S, NULL, SB_ABORT_MEMORY);
    if (!keep_error)
        lua_settop(L, 0);
    return status;
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
    if (sb_protected(S, sb_open_p, S, 0) != LUA_OK) {
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
size_t sb_memory_used(const SBState *S) { return S->mem_used; }
size_t sb_memory_peak(const SBState *S) { return S->mem_peak; }
size_t sb_memory_limit(const SBState *S) { return S->mem_limit; }
void sb_set_memory_limit(SBState *S, size_t limit) { S->mem_limit = limit; }
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
int sb_abort_reason(const SBState *S) { return S->aborting; }
void sb_mark_abort(SBState *S, lua_State *co, int reason) { sb_set_abort_at(S, co, reason); }
void sb_set_host(SBState *S, void *ctx, SBHostCallback callback) {
    S->ctx = ctx;
    S->callback = callback;
}
const char *sb_abort_source(const SBState *S) { return S->abort_src; }
int sb_abort_line(const SBState *S) { return S->abort_line; }
SBBuffer *sb_inbuf(SBState *S) { return &S->in; }
SBBuffer *sb_outbuf(SBState *S) { return &S->out; }
int sb_conversion_code(const SBState *S) { return S->conv_code; }
const char *sb_conversion_path(const SBState *S) { return S->conv_path; }
const char *sb_conversion_detail(const SBState *S) { return S->conv_detail; }
lua_State *sb_lua_state(SBState *S) { return S->L; }

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

/* ================================================================== */
/* Handles, globals, registration                                      */
/* ================================================================== */

typedef struct {
    SBState *S;
    const char *src;
    size_t len;
    const char *chunkname;
    const char *table;
    const char *name;
    int64_t id;
    int flag;
    int result;
} SBOpArgs;

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
    SBOpArgs a;
    memset(&a, 0, sizeof a);
    if (S->closed)
        return SB_ERROR;
    if (S->aborting)
        return SB_ABORT;
    a.S = S;
    a.src = source;
    a.len = len;
    a.chunkname = chunkname;
    a.id = id;
    if (sb_protected(S, sb_load_p, &a, 0) != LUA_OK)
        return S->aborting ? SB_ABORT : SB_ERROR;
    return a.result;
}

static int sb_release_p(lua_State *L) {
    SBOpArgs *a = (SBOpArgs *)lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->S->handles_ref);
    lua_pushnil(L);
    lua_rawseti(L, -2, (lua_Integer)a->id);
    return 0;
}

int sb_release(SBState *S, int64_t id) {
    SBOpArgs a;
    memset(&a, 0, sizeof a);
    if (S->closed)
        return SB_OK;
    a.S = S;
    a.id = id;
    return sb_protected(S, sb_release_p, &a, 0) == LUA_OK ? SB_OK : SB_ERROR;
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
    SBOpArgs a;
    memset(&a, 0, sizeof a);
    if (S->closed)
        return SB_ERROR;
    if (S->aborting)
        return SB_ABORT;
    a.S = S;
    a.table = table;
    a.name = name;
    a.id = id;
    a.flag = is_async;
    if (sb_protected(S, sb_register_p, &a, 0) != LUA_OK)
        return S->aborting ? SB_ABORT : SB_ERROR;
    return SB_OK;
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
    SBOpArgs a;
    memset(&a, 0, sizeof a);
    if (S->closed)
        return SB_ERROR;
    if (S->aborting)
        return SB_ABORT;
    a.S = S;
    a.name = name;
    if (sb_protected(S, sb_set_global_p, &a, 0) != LUA_OK)
        return S->aborting ? SB_ABORT : SB_ERROR;
    return SB_OK;
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
    SBOpArgs a;
    memset(&a, 0, sizeof a);
    if (S->closed)
        return SB_ERROR;
    if (S->aborting)
        return SB_ABORT;
    a.S = S;
    a.name = name;
    if (sb_protected(S, sb_get_global_p, &a, 0) != LUA_OK)
        return S->aborting ? SB_ABORT : SB_ERROR;
    return a.result;
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
    SBOpArgs a;
    memset(&a, 0, sizeof a);
    if (S->closed)
        return SB_ERROR;
    if (S->aborting)
        return SB_ABORT;
    a.S = S;
    a.name = name;
    a.id = id;
    if (sb_protected(S, sb_ref_global_p, &a, 0) != LUA_OK)
        return S->aborting ? SB_ABORT : SB_ERROR;
    return a.result;
}

/* ================================================================== */
/* Runs                                                                */
/* ================================================================== */

/* Continuation of sb_boot: returns everything the function returned. */
static int sb_boot_cont(lua_State *L, int status, lua_KContext base) {
    (void)status;
    return lua_gettop(L) - (int)base;
}

/* The body of every run coroutine. Argument 1 is the function to run. The
 * run's arguments are decoded here, inside lua_resume, so an allocation
 * failure is an ordinary (protected) LUA_ERRMEM; then the function is called
 * in a yieldable way. */
static int sb_boot(lua_State *L) {
    SBState *S = sb_state_of(L);
    int nargs = S->boot_nargs;
    size_t off = 0;
    luaL_checkstack(L, nargs + 2, "too many arguments");
    sb_decode(L, S, &S->in, &off, nargs);
    lua_callk(L, nargs, LUA_MULTRET, 0, sb_boot_cont);
    return sb_boot_cont(L, LUA_OK, 0);
}

/* Creates a run coroutine and puts it in the pool (under lua_pcall). */
static int sb_newthread_p(lua_State *L) {
    SBState *S = (SBState *)lua_touserdata(L, 1);
    lua_State *co;
    int ref;
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->threads_ref);
    co = lua_newthread(L);
    ref = luaL_ref(L, -2);
    lua_settop(L, 0);
    SB_TFLAGS(co) = SB_TF_OWNED;
    S->pool_threads[S->pool_n] = co;
    S->pool_refs[S->pool_n] = ref;
    S->pool_n++;
    return 0;
}

int sb_run_prepare(SBState *S, int64_t fn_id, int nargs, lua_State **co_out, int *coref) {
    lua_State *co;
    if (S->closed)
        return SB_ERROR;
    if (S->aborting)
        return SB_ABORT;
    if (S->pool_n == 0 && sb_protected(S, sb_newthread_p, S, 0) != LUA_OK)
        return S->aborting ? SB_ABORT : SB_ERROR;
    co = S->pool_threads[S->pool_n - 1];
    if (!lua_checkstack(co, 4)) {
        sb_set_abort_at(S, NULL, SB_ABORT_MEMORY);
        return SB_ABORT;
    }
    lua_pushcfunction(co, sb_boot);
    lua_rawgeti(co, LUA_REGISTRYINDEX, S->handles_ref);
    if (lua_rawgeti(co, -1, (lua_Integer)fn_id) != LUA_TFUNCTION) {
        lua_settop(co, 0);
        return SB_BAD_HANDLE;
    }
    lua_remove(co, -2);
    S->pool_n--;
    S->boot_nargs = nargs;
    /* the coroutine has the hook since its creation (inherited from the main
     * thread, or set again by sb_set_hook_interval); the < hook_interval
     * instructions counted at the end of its previous run are charged to
     * this one */
    *co_out = co;
    *coref = S->pool_refs[S->pool_n];
    return SB_OK;
}

int sb_run_resume(SBState *S, lua_State *co, int nargs, SBBudget *budget, int *nres) {
    int status;
    *nres = 0;
    if (S->closed)
        return SB_ERROR;
    if (S->aborting)
        return SB_ABORT;
    S->remaining = budget->remaining;
    S->deadline_ns = budget->deadline_ns;
    S->host_yield = 0;
    SB_TFLAGS(co) &= ~(uintptr_t)SB_TF_WAIT;
    status = lua_resume(co, S->L, nargs, nres);
    budget->remaining = S->remaining;
    S->deadline_ns = 0;
    if (status == LUA_YIELD) {
        if (S->host_yield) {
            S->host_yield = 0;
            return SB_HOST_YIELD;
        }
        return SB_PLAIN_YIELD;
    }
    if (status == LUA_OK)
        return S->aborting ? SB_ABORT : SB_OK;
    if (status == LUA_ERRMEM)
        sb_set_abort_at(S, co, SB_ABORT_MEMORY);
    return S->aborting ? SB_ABORT : SB_ERROR;
}

int sb_run_results(SBState *S, lua_State *co, int nres) {
    int bad = 0;
    S->out.len = 0;
    if (nres == 0)
        return SB_OK;
    return sb_encode(S, co, lua_gettop(co) - nres + 1, nres, 0, &bad) == SB_CONV_OK ? SB_OK : SB_CONVERSION;
}

typedef struct {
    SBState *S;
    lua_State *co;
} SBErrArgs;

static int sb_error_info_p(lua_State *L) {
    SBErrArgs *a = (SBErrArgs *)lua_touserdata(L, 1);
    lua_State *co = a->co;
    lua_Debug ar;
    int level, bad = 0, found = 0;
    lua_settop(L, 0);
    /* message: raw, never __tostring */
    switch (lua_type(co, -1)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(co, -1, &len);
        lua_pushlstring(L, s, len);
        break;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(co, -1))
            lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(co, -1));
        else
            lua_pushfstring(L, "%f", (LUAI_UACNUMBER)lua_tonumber(co, -1));
        break;
    case LUA_TNIL:
        lua_pushliteral(L, "nil");
        break;
    case LUA_TBOOLEAN:
        lua_pushstring(L, lua_toboolean(co, -1) ? "true" : "false");
        break;
    default:
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(co, -1));
        break;
    }
    luaL_traceback(L, co, NULL, 0);
    for (level = 0; level < 64 && lua_getstack(co, level, &ar); level++) {
        if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
            lua_pushstring(L, ar.short_src);
            lua_pushinteger(L, ar.currentline);
            found = 1;
            break;
        }
    }
    if (!found) {
        lua_pushnil(L);
        lua_pushnil(L);
    }
    a->S->out.len = 0;
    sb_encode(a->S, L, 1, 4, 0, &bad);
    lua_settop(L, 0);
    return 0;
}

int sb_error_info(SBState *S, lua_State *co) {
    SBErrArgs a;
    a.S = S;
    a.co = co;
    S->out.len = 0;
    if (S->closed)
        return SB_ERROR;
    if (sb_protected(S, sb_error_info_p, &a, 0) != LUA_OK) {
        S->out.len = 0;
        return SB_ERROR;
    }
    return SB_OK;
}

static int sb_unref_p(lua_State *L) {
    SBOpArgs *a = (SBOpArgs *)lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->S->threads_ref);
    luaL_unref(L, -1, (int)a->id);
    return 0;
}

void sb_run_finish(SBState *S, lua_State *co, int coref, int reusable) {
    if (S->closed)
        return;
    if (reusable && !S->aborting && S->pool_n < SB_POOL_MAX && lua_status(co) == LUA_OK) {
        lua_settop(co, 0);
        SB_TFLAGS(co) = SB_TF_OWNED;
        S->pool_threads[S->pool_n] = co;
        S->pool_refs[S->pool_n] = coref;
        S->pool_n++;
        return;
    }
    {
        SBOpArgs a;
        memset(&a, 0, sizeof a);
        a.S = S;
        a.id = coref;
        (void)sb_protected(S, sb_unref_p, &a, 0);
    }
}

void sb_set_host_result(SBState *S, int status, int nresults) {
    S->host_result = status;
    S->host_nresults = nresults;
}

/* ================================================================== */
/* Macro wrappers                                                      */
/* ================================================================== */

int sbm_pcall(lua_State *L, int nargs, int nresults, int msgh) { return lua_pcall(L, nargs, nresults, msgh); }
void sbm_pop(lua_State *L, int n) { lua_pop(L, n); }
void sbm_newtable(lua_State *L) { lua_newtable(L); }
const char *sbm_tostring(lua_State *L, int idx) { return lua_tostring(L, idx); }
int sbm_isfunction(lua_State *L, int idx) { return lua_isfunction(L, idx); }
lua_Number sbm_tonumber(lua_State *L, int idx) { return lua_tonumber(L, idx); }
lua_Integer sbm_tointeger(lua_State *L, int idx) { return lua_tointeger(L, idx); }
int sbm_upvalueindex(int i) { return lua_upvalueindex(i); }
int sbm_registryindex(void) { return LUA_REGISTRYINDEX; }
void sbm_pushcfunction(lua_State *L, lua_CFunction f) { lua_pushcfunction(L, f); }
int sbm_getglobal(lua_State *L, const char *name) { return lua_getglobal(L, name); }
int sbm_dostring(lua_State *L, const char *code) { return luaL_dostring(L, code); }
