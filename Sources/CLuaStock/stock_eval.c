/*
 * Test support: Lua code evaluated in a stock state.
 *
 * The sandbox replaces stock functions with ports (lua_libport.c) whose
 * whole claim is "same results as the stock ones"; the differential tests
 * check that claim against the Lua library the sandbox is built on, which
 * is reachable from here and nowhere else in the tests. Nothing in the
 * sandbox calls this.
 */
#include <string.h>

#include "CLuaStock.h"
#include <lauxlib.h>
#include <lualib.h>

typedef struct {
    const char *code;
    size_t len;
    const char *chunkname;
} SBStockArgs;

/* Everything that may raise (opening the libraries, loading, running),
 * under the caller's lua_pcall; leaves the result string on top. */
static int sbt_stock_eval_p(lua_State *L) {
    SBStockArgs *a = (SBStockArgs *)lua_touserdata(L, 1);
    luaL_openlibs(L);
    lua_pushfstring(L, "@%s", a->chunkname);
    if (luaL_loadbufferx(L, a->code, a->len, lua_tostring(L, -1), "t") != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "the chunk returned a %s, not a string", luaL_typename(L, -1));
    return 1;
}

int sbt_stock_eval(const char *code, size_t len, const char *chunkname, SBBuffer *out) {
    SBStockArgs a;
    lua_State *L = luaL_newstate();
    int status, rc = SB_OK;
    size_t n = 0;
    const char *s;
    out->len = 0;
    if (L == NULL)
        return SB_NOMEM;
    a.code = code;
    a.len = len;
    a.chunkname = chunkname;
    lua_pushcfunction(L, sbt_stock_eval_p);
    lua_pushlightuserdata(L, &a);
    status = lua_pcall(L, 1, 1, 0);
    if (status != LUA_OK)
        rc = SB_ERROR;
    s = lua_tolstring(L, -1, &n); /* the result, or the error message */
    if (s == NULL) {
        s = "(error object is not a string)";
        n = strlen(s);
    }
    if (sb_buffer_reserve(out, n)) {
        memcpy(out->data, s, n);
        out->len = n;
    } else
        rc = SB_NOMEM;
    lua_close(L);
    return rc;
}
