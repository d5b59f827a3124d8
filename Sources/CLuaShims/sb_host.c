/*
 * The host-call trampoline: the lua_CFunction behind every host function.
 *
 * Swift must never raise a Lua error (a longjmp across Swift frames is
 * undefined behaviour), so the host answers a call with a status code and
 * this file raises, returns or yields on its behalf: it encodes the
 * arguments, calls the host callback, then pushes the results, raises the
 * host's message, or yields the coroutine for an async call and delivers
 * the answer in the continuation when the host resumes the run.
 */
#include <stdlib.h>
#include <string.h>

#include "sb_internal.h"

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
int sb_trampoline(lua_State *L) {
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

void sb_set_host(SBState *S, void *ctx, SBHostCallback callback) {
    S->ctx = ctx;
    S->callback = callback;
}

void sb_set_host_result(SBState *S, int status, int nresults) {
    S->host_result = status;
    S->host_nresults = nresults;
}

void sb_set_reject(SBState *S, const char *msg) {
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
