/* CLuaStock: Lua code run in a stock state, for the tests that compare the
 * sandbox's ported functions (CLuaShims' lua_libport.c) with the ones of the
 * Lua library it is built on. Test support only: nothing in the runtime
 * depends on it. */
#ifndef CLUA_STOCK_H
#define CLUA_STOCK_H

#include "CLuaShims.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Runs text chunk `code`, named "@chunkname", in a fresh stock state
 *  (luaL_newstate + luaL_openlibs: no limits, nothing replaced) and stores
 *  its first result, which must be a string, in *out (replacing what it
 *  held; free it with sb_buffer_free). SB_OK, SB_ERROR (*out holds the
 *  error message) or SB_NOMEM. */
int sbt_stock_eval(const char *code, size_t len, const char *chunkname, SBBuffer *out);

#ifdef __cplusplus
}
#endif
#endif
