/*
 * The sandboxed table library: ltablib with insert/remove/move/concat
 * replaced by the step-counted ports of lua_libport.c, and sort wrapped.
 *
 * The stock sort runs its whole quicksort in C, where the count hook never
 * fires: an expensive or dishonest comparator (or a huge array with the
 * default one) could hold the state for as long as it likes. Wrapping the
 * comparator charges every comparison to the run's budget while keeping the
 * stock algorithm, its errors ("invalid order function for sorting") and
 * its results.
 */
#include "sb_internal.h"

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

static const luaL_Reg sb_tab_funcs[] = {
    {"insert", sb_tab_insert},
    {"remove", sb_tab_remove},
    {"move", sb_tab_move},
    {"concat", sb_tab_concat},
    {NULL, NULL}
};

void sb_open_table(lua_State *L) {
    lua_getglobal(L, LUA_TABLIBNAME);
    luaL_setfuncs(L, sb_tab_funcs, 0);
    lua_getfield(L, -1, "sort");
    lua_pushcclosure(L, sb_tab_sort, 1);
    lua_setfield(L, -2, "sort");
    lua_pop(L, 1);
}
