/*
 * Runs: a run is one call of a handle in a coroutine of its own, resumed
 * by the host until it returns, fails, or suspends in an async host call or
 * at the end of its slice.
 *
 * Coroutines, not lua_pcall, because an async host call must be able to
 * suspend the run and let others proceed; pooled, because most runs are
 * short and a new thread (with its stack) per event would dominate their
 * cost. The run's arguments are decoded inside the coroutine so that an
 * allocation failure is an ordinary protected error, not a longjmp out of
 * a host call.
 */
#include "sb_internal.h"

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
    SBState *S = ((SBOpArgs *)lua_touserdata(L, 1))->S;
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
    SBOpArgs a = {0};
    lua_State *co;
    /* a new coroutine only when the pool is empty (else just the guard) */
    int rc = sb_op(S, S->pool_n == 0 ? sb_newthread_p : NULL, &a, SB_OP_LIVE);
    if (rc != SB_OK)
        return rc;
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
    S->cpu_limit_ns = budget->cpu_limit_ns;
    S->cpu_used_ns = budget->cpu_used_ns;
    S->cpu_mark_ns = 0; /* CPU is read from the first count hook on */
    S->slice_ns = budget->slice_ns;
    if (budget->slice_ns != 0) {
        uint64_t now = sb_now_ns();
        S->slice_end_ns = now + budget->slice_ns;
        S->slice_min_end_ns = now + budget->slice_ns / 10;
    } else {
        S->slice_end_ns = 0;
    }
    S->host_yield = 0;
    S->slice_yield = 0;
    SB_TFLAGS(co) &= ~(uintptr_t)SB_TF_WAIT;
    S->running = co;
    status = lua_resume(co, S->L, nargs, nres);
    S->running = NULL;
    budget->remaining = S->remaining;
    if (S->cpu_limit_ns != 0 && S->cpu_mark_ns != 0) {
        uint64_t now = sb_thread_cpu_ns();
        if (now > S->cpu_mark_ns)
            S->cpu_used_ns += now - S->cpu_mark_ns;
    }
    budget->cpu_used_ns = S->cpu_used_ns;
    /* spent without a count hook to notice (C work charged by bytes right
     * before the run ended or suspended): the budget is spent all the same */
    if (S->remaining < 0 && (status == LUA_OK || status == LUA_YIELD))
        sb_set_abort_at(S, NULL, SB_ABORT_INSTRUCTIONS);
    S->deadline_ns = 0;
    S->cpu_limit_ns = 0;
    S->slice_ns = 0;
    S->slice_end_ns = 0;
    if (status == LUA_YIELD) {
        if (S->host_yield) {
            S->host_yield = 0;
            if (S->slice_yield) {
                S->slice_yield = 0;
                return SB_SLICE_YIELD;
            }
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

static int sb_error_info_p(lua_State *L) {
    SBOpArgs *a = (SBOpArgs *)lua_touserdata(L, 1);
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
    /* also after an abort: the host reports what failed */
    SBOpArgs a = {.co = co};
    int rc;
    S->out.len = 0;
    rc = sb_op(S, sb_error_info_p, &a, SB_OP_ANY);
    if (rc != SB_OK)
        S->out.len = 0; /* no partial details */
    return rc;
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
        SBOpArgs a = {.id = coref};
        (void)sb_op(S, sb_unref_p, &a, SB_OP_ANY);
    }
}
