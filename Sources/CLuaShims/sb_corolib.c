/*
 * The sandboxed coroutine library: lcorolib's resume, wrap and close,
 * replaced (status, running, isyieldable, yield, create stay stock).
 *
 * Two things the stock versions cannot do: keep a script away from the
 * coroutines the host owns (a run's coroutine, or one waiting for an async
 * host call: resuming or closing it would corrupt the run), and carry an
 * async host call made inside a nested coroutine out to the host, by
 * yielding every coroutine up to the run's and resuming them back down when
 * the answer comes; a slice's pause (sb_limits.c) travels the same way. And,
 * as everywhere, an abort inside a coroutine is
 * rethrown in its resumer instead of being returned as a failure.
 */
#include "sb_internal.h"

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
        S->running = co;
        int status = lua_resume(co, L, narg, &nres);
        S->running = L;
        if (status == LUA_YIELD && S->host_yield) {
            if (lua_isyieldable(L)) {
                SB_TFLAGS(co) |= SB_TF_WAIT;
                SB_TFLAGS(L) |= SB_TF_WAIT;
                return lua_yieldk(L, 0, (lua_KContext)kind, sb_co_cont);
            }
            if (S->slice_yield) {
                /* a slice's pause: this thread cannot pass it out, so the
                 * coroutine goes on (the budget and limits still apply) */
                sb_slice_refused(S);
                SB_TFLAGS(co) &= ~(uintptr_t)SB_TF_WAIT;
                narg = 0;
                continue;
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

static const luaL_Reg sb_co_funcs[] = {
    {"resume", sb_co_resume},
    {"wrap", sb_co_wrap},
    {"close", sb_co_close},
    {NULL, NULL}
};

void sb_open_coroutine(lua_State *L) {
    lua_getglobal(L, LUA_COLIBNAME);
    luaL_setfuncs(L, sb_co_funcs, 0);
    lua_pop(L, 1);
}
