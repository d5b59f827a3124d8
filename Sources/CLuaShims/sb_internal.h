/* Internal declarations shared by the CLuaShims sources. Not exported. */
#ifndef SB_INTERNAL_H
#define SB_INTERNAL_H

#include "CLuaShims.h"

/* Hard cap on the conversion depth (stack arrays are sized by it). */
#define SB_MAX_DEPTH_CAP 512
/* Idle run coroutines kept for reuse. */
#define SB_POOL_MAX 64
/* Pattern-matching / C-loop steps charged to the budget per batch. */
#define SB_STEP_BATCH 1000

/* Per-thread flags, stored in the thread's LUA_EXTRASPACE. */
#define SB_TF_OWNED 1u /* a host run coroutine: scripts may not resume/close it */
#define SB_TF_WAIT 2u  /* suspended until the host answers an async call */
#define SB_TFLAGS(L) (*(uintptr_t *)lua_getextraspace(L))

typedef struct SBPathItem {
    int is_int;
    lua_Integer i;
    const char *s;
    size_t len;
} SBPathItem;

struct SBState {
    lua_State *L;
    int closed;

    /* memory accounting */
    size_t mem_used;
    size_t mem_peak;
    size_t mem_limit;

    /* limits of the run being executed */
    uint32_t hook_interval;
    int64_t remaining;
    uint64_t deadline_ns;

    /* abort (sticky) */
    int aborting;
    char abort_src[LUA_IDSIZE];
    int abort_line;

    /* host calls */
    void *ctx;
    SBHostCallback callback;
    int host_yield;    /* set by the trampoline right before yielding */
    int host_result;   /* SB_HOST_RESULT_* of the pending async call */
    int host_nresults;
    int boot_nargs;    /* arguments sb_boot decodes when a run starts */
    int64_t *retain;
    int retain_cap;

    /* buffers */
    SBBuffer in;
    SBBuffer out;

    /* conversion */
    SBConvLimits conv;
    int conv_code;
    char conv_path[256];
    char conv_detail[160];
    const void *enc_ancestors[SB_MAX_DEPTH_CAP + 1];
    SBPathItem enc_path[SB_MAX_DEPTH_CAP + 1];

    /* registry references */
    int handles_ref;
    int threads_ref;
    int emptyarr_ref;

    /* pool of idle run coroutines */
    int pool_n;
    int pool_refs[SB_POOL_MAX];
    lua_State *pool_threads[SB_POOL_MAX];
};

static inline SBState *sb_state_of(lua_State *L) {
    void *ud = NULL;
    (void)lua_getallocf(L, &ud);
    return (SBState *)ud;
}

/* sandbox.c */
void sb_set_abort_at(SBState *S, lua_State *L, int reason);
int sb_raise_abort(lua_State *L);
void sb_charge(lua_State *L, int64_t steps);     /* may raise (abort) */
void sb_charge_lazy(lua_State *L, int64_t steps); /* never raises */

/* codec.c */
/* Encodes n values starting at absolute index idx of L into S->out
 * (appending). allow_functions: top-level functions become SB_TAG_FUNCTION.
 * Never raises. Returns SB_CONV_*; on failure *bad_index is the 0-based
 * index of the offending value and conv_path/detail are filled. */
int sb_encode(SBState *S, lua_State *L, int idx, int n, int allow_functions, int *bad_index);
/* Decodes n values from buf and pushes them on L. May raise. */
void sb_decode(lua_State *L, SBState *S, const SBBuffer *buf, size_t *offset, int n);
/* Human text for a conversion failure: "<what> at <path>". */
const char *sb_conv_message(SBState *S, char *out, size_t outlen);

/* lua_libport.c */
int sb_str_find(lua_State *L);
int sb_str_match(lua_State *L);
int sb_str_gmatch(lua_State *L);
int sb_str_gsub(lua_State *L);
int sb_tab_insert(lua_State *L);
int sb_tab_remove(lua_State *L);
int sb_tab_move(lua_State *L);
int sb_tab_concat(lua_State *L);

#endif
