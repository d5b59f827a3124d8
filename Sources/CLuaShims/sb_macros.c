/*
 * Function wrappers for Lua's macros, and the raw lua_State.
 *
 * Swift cannot call a C macro, and the host code that works on a lua_State
 * outside the sandbox (benchmarks, tests) needs a few: these are the
 * macros as functions, nothing more. Unlike the rest of CLuaShims they are
 * not guarded: sbm_pcall is the only one meant to be called with code that
 * may raise.
 */
#include "sb_internal.h"

lua_State *sb_lua_state(SBState *S) { return S->L; }

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
