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
/* Bytes a run may allocate for one instruction of its budget: the work of a
 * C function (string.rep, table.concat, string.format, gsub, "..", ...) is
 * charged by the bytes it produces, at about what copying them costs beside
 * a VM instruction (a 5 ns instruction, 16 bytes copied and touched). */
#define SB_BYTES_PER_STEP 16

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
    uint64_t cpu_limit_ns;  /* 0 = none */
    uint64_t cpu_used_ns;   /* by the run, up to cpu_mark_ns */
    uint64_t cpu_mark_ns;   /* thread CPU clock at the last hook of this
                               resume; 0 until the first */
    uint64_t slice_ns;      /* 0 = the run is not sliced */
    uint64_t slice_end_ns;  /* when the current resume should pause */
    int slice_yield;        /* set by the hook right before pausing */
    uint64_t slice_min_end_ns; /* from when waiting work pauses it */
    const SBWaitingWork *waiting; /* work waiting for this thread, or NULL */
    lua_State *running;     /* the thread executing Lua now (hook arming) */

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

/* Sets t[name] = nil for each name of a NULL-terminated list; t on top. */
static inline void sb_remove_fields(lua_State *L, const char *const *names) {
    for (; *names != NULL; names++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *names);
    }
}

/* sb_limits.c */
void sb_set_abort_at(SBState *S, lua_State *L, int reason);
int sb_raise_abort(lua_State *L);
void sb_charge(lua_State *L, int64_t steps);     /* may raise (abort) */
void sb_charge_lazy(lua_State *L, int64_t steps); /* never raises */
/* After a protected call inside the sandbox returned `status` (an error
 * with its value on top): rethrows if the run is aborting. */
void sb_rethrow_if_aborting(lua_State *L, int status);
void sb_hook(lua_State *L, lua_Debug *ar);
/* A slice pause that could not be passed out to the host: clears it and
 * tries again after another slice. */
void sb_slice_refused(SBState *S);
void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* sb_state.c */
/* The arguments of a public entry point's protected work (sb_op). */
typedef struct {
    SBState *S;          /* set by sb_op */
    const char *src;
    size_t len;
    const char *chunkname;
    const char *table;
    const char *name;
    int64_t id;
    int flag;
    lua_State *co;
    int result;          /* SB_* the work reports; SB_OK unless it sets it */
} SBOpArgs;

/* How an entry point treats a state that a limit aborted. */
enum {
    SB_OP_LIVE = 0, /* refused (SB_ABORT); a failure that aborts is SB_ABORT */
    SB_OP_ANY = 1   /* runs anyway (releasing, reading error details); a failure is SB_ERROR */
};

/* The guard-protect-map of the public entry points: refuses a closed state
 * (SB_ERROR) and, for SB_OP_LIVE, an aborted one (SB_ABORT); runs op(a)
 * under lua_pcall on the main thread (op NULL: the guard only); maps an
 * error raised by op as `mode` says; else returns a->result. */
int sb_op(SBState *S, lua_CFunction op, SBOpArgs *a, int mode);

/* sb_baselib.c, sb_corolib.c, sb_tablib.c: install the sandboxed functions
 * over the stock library (already open). Raise on allocation failure. */
void sb_open_base(lua_State *L);
void sb_open_coroutine(lua_State *L);
void sb_open_table(lua_State *L);

/* sb_host.c */
/* The lua_CFunction behind every host function (upvalues: function id,
 * is_async, qualified name). */
int sb_trampoline(lua_State *L);
/* Answers the pending async host call with a refusal carrying msg, as the
 * host would through sb_set_host_result. */
void sb_set_reject(SBState *S, const char *msg);

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
