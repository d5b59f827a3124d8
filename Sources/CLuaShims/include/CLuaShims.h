/*
 * CLuaShims: the C half of the Lua sandbox.
 *
 * Everything that may raise a Lua error (longjmp) lives on this side. Swift
 * only calls functions declared here; every one of them is safe to call from
 * Swift: none of them raises, they report failures through return codes.
 *
 *  - a byte-limited lua_Alloc with exact accounting (returns to zero on close)
 *  - the instruction-count hook (instruction budget + wall-clock deadline)
 *  - the sandboxed standard library (wrapped pcall/xpcall/coroutine/load/
 *    setmetatable/collectgarbage, step-counted pattern matching, bounded
 *    table.move)
 *  - the host-function trampoline: Swift answers with a status, C raises or
 *    yields on its behalf
 *  - a flat value codec: Swift <-> C buffers in the format below
 *  - wrappers for the Lua macros used by Swift code (benchmarks, tests)
 *  - for tests only: Lua code evaluated in a stock, unsandboxed state
 *
 * Value buffer format (native byte order, no alignment):
 *   SB_TAG_NIL | SB_TAG_FALSE | SB_TAG_TRUE
 *   SB_TAG_INT    int64
 *   SB_TAG_FLOAT  double
 *   SB_TAG_STRING uint64 length, bytes, one '\0' (not counted in length)
 *   SB_TAG_ARRAY  uint32 count, count values
 *   SB_TAG_OBJECT uint32 count, count x (uint64 key length, key bytes, '\0', value)
 *   SB_TAG_FUNCTION  (only in host-call arguments: a Lua function argument)
 */
#ifndef CLUASHIMS_H
#define CLUASHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Value tags                                                          */
/* ------------------------------------------------------------------ */
enum {
    SB_TAG_NIL = 0,
    SB_TAG_FALSE = 1,
    SB_TAG_TRUE = 2,
    SB_TAG_INT = 3,
    SB_TAG_FLOAT = 4,
    SB_TAG_STRING = 5,
    SB_TAG_ARRAY = 6,
    SB_TAG_OBJECT = 7,
    SB_TAG_FUNCTION = 8
};

/* ------------------------------------------------------------------ */
/* Status codes returned to Swift                                      */
/* ------------------------------------------------------------------ */
enum {
    SB_OK = 0,            /* success */
    SB_HOST_YIELD = 1,    /* run suspended on an async host call */
    SB_PLAIN_YIELD = 2,   /* the run's coroutine yielded by itself (error) */
    SB_ERROR = 3,         /* Lua error: details via sb_error_info */
    SB_ABORT = 4,         /* a limit was exceeded: see sb_abort_reason */
    SB_SYNTAX = 5,        /* syntax error while loading */
    SB_CONVERSION = 6,    /* value could not be converted: sb_conversion_* */
    SB_BAD_HANDLE = 7,    /* the handle does not name a live function */
    SB_NOMEM = 8,         /* host-side malloc failed */
    SB_SLICE_YIELD = 9    /* the run used up its slice and paused: resume it
                             (nargs 0) when the host has let others go */
};

/* Why a state aborted (sticky: a state that aborted must be discarded). */
enum {
    SB_ABORT_NONE = 0,
    SB_ABORT_MEMORY = 1,
    SB_ABORT_INSTRUCTIONS = 2,
    SB_ABORT_DEADLINE = 3,
    SB_ABORT_CPU = 4
};

/* Conversion problems (Lua -> buffer). */
enum {
    SB_CONV_OK = 0,
    SB_CONV_FUNCTION = 1,
    SB_CONV_USERDATA = 2,
    SB_CONV_THREAD = 3,
    SB_CONV_CYCLE = 4,
    SB_CONV_DEPTH = 5,
    SB_CONV_TOO_LARGE = 6,
    SB_CONV_KEY = 7,          /* a key that is neither a string nor fits an array */
    SB_CONV_MIXED = 8,        /* both array (integer) and object (string) keys */
    SB_CONV_SPARSE = 9,       /* integer keys too sparse for an array */
    SB_CONV_NONFINITE = 10,   /* NaN or infinity */
    SB_CONV_NOMEM = 11        /* host-side buffer allocation failed */
};

/* What the host answers to a host-function call. */
enum {
    SB_HOST_RESULT_OK = 0,      /* results are encoded in the input buffer */
    SB_HOST_RESULT_ERROR = 1,   /* the input buffer holds an error message */
    SB_HOST_RESULT_YIELD = 2,   /* async: suspend the calling coroutine */
    SB_HOST_RESULT_REJECT = 3   /* (resume only) the async call is refused;
                                   the input buffer holds the message */
};

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

/** A growable byte buffer owned by C (malloc, not counted against Lua). */
typedef struct SBBuffer {
    unsigned char *data;
    size_t len;
    size_t cap;
} SBBuffer;

/** Per-run budget, saved by the host across suspensions. */
typedef struct SBBudget {
    int64_t remaining;     /* instructions (and pattern-matching steps) left */
    uint64_t deadline_ns;  /* monotonic deadline (sb_now_ns), 0 = none */
    uint64_t cpu_limit_ns; /* CPU time the run may use in all, 0 = none */
    uint64_t cpu_used_ns;  /* CPU time it used so far (sb_run_resume adds) */
    uint64_t slice_ns;     /* longest stretch of one resume before the run
                              pauses with SB_SLICE_YIELD, 0 = never */
} SBBudget;

/** Conversion limits (Lua -> host). */
typedef struct SBConvLimits {
    uint32_t max_depth;
    uint64_t max_nodes;
    uint64_t max_bytes;
} SBConvLimits;

/**
 * Host callback: called by the trampoline when Lua calls a host function.
 * The arguments are encoded in sb_outbuf (nargs values). The host writes its
 * answer to sb_inbuf and returns an SB_HOST_RESULT_* code; for RESULT_OK it
 * stores the number of encoded results in *nresults. It must not call any
 * function of this header other than the buffer/retain helpers.
 */
typedef int (*SBHostCallback)(void *ctx, int function_id, int nargs, int *nresults);

typedef struct SBState SBState;

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */
/* ------------------------------------------------------------------ */

/** Opens a sandboxed state. Returns NULL if the state cannot be created
 *  within `memory_limit` bytes or malloc fails. */
SBState *sb_open(size_t memory_limit, uint32_t hook_interval,
                 void *ctx, SBHostCallback callback);
/** Sets the host context and callback used by the trampoline. */
void sb_set_host(SBState *S, void *ctx, SBHostCallback callback);
/** Closes the lua_State (idempotent). The SBState stays readable. */
void sb_close(SBState *S);
/** Frees the SBState (closes first if needed). */
void sb_free(SBState *S);
int sb_is_closed(const SBState *S);

size_t sb_memory_used(const SBState *S);
size_t sb_memory_peak(const SBState *S);
size_t sb_memory_limit(const SBState *S);
void sb_set_memory_limit(SBState *S, size_t limit);
void sb_set_conv_limits(SBState *S, SBConvLimits limits);
/** VM instructions between two count-hook calls (applies to new runs). */
void sb_set_hook_interval(SBState *S, uint32_t interval);

/** Work waiting for the thread that runs a state's Lua, counted by the host
 *  (its executor: one more when a job is queued, one less when it starts),
 *  shared by all the states that run there. A sliced run that has had its
 *  shortest slice (a tenth of budget->slice_ns) pauses at its next count hook
 *  once more work waits than the host's own ignored jobs (the turns that hand
 *  out slices), instead of at the end of its slice: what waits behind a
 *  computing rule waits about a millisecond, not a slice. Thread-safe. */
typedef struct SBWaitingWork SBWaitingWork;
SBWaitingWork *sb_waiting_work_new(void);
void sb_waiting_work_free(SBWaitingWork *w);
/** Adds delta to the count of waiting jobs. */
void sb_waiting_work_add(SBWaitingWork *w, long delta);
/** Adds delta to the count of waiting jobs that do not pause a run. */
void sb_waiting_work_ignore(SBWaitingWork *w, long delta);
/** Jobs waiting, not counting the ignored ones (may be briefly negative). */
long sb_waiting_work_pending(const SBWaitingWork *w);
/** The count the runs of S watch; NULL (the default) for none. */
void sb_set_waiting_work(SBState *S, const SBWaitingWork *w);

/** Monotonic clock in nanoseconds (the clock deadlines are measured on). */
uint64_t sb_now_ns(void);
/** CPU time of the calling thread in nanoseconds (the clock CPU limits are
 *  measured on). */
uint64_t sb_thread_cpu_ns(void);
/** Charges `steps` to the budget of the run in progress without raising:
 *  the next count hook aborts the run if the budget is spent. For host
 *  functions whose work is proportional to bytes (json.encode). */
void sb_charge_host(SBState *S, int64_t steps);

/** SB_ABORT_* reason, sticky. */
int sb_abort_reason(const SBState *S);
/** Marks the state aborted (used by the host for deadlines that pass
 *  while a run is suspended). Keeps the first reason; the location is taken
 *  from thread `co` when not NULL. */
void sb_mark_abort(SBState *S, lua_State *co, int reason);
/** Where the abort happened: chunk (short source) or "" and line or 0. */
const char *sb_abort_source(const SBState *S);
int sb_abort_line(const SBState *S);

/* ------------------------------------------------------------------ */
/* Buffers                                                             */
/* ------------------------------------------------------------------ */
SBBuffer *sb_inbuf(SBState *S);   /* host -> Lua */
SBBuffer *sb_outbuf(SBState *S);  /* Lua -> host */
/** Ensures room for `extra` more bytes. Returns 0 if malloc fails. */
int sb_buffer_reserve(SBBuffer *b, size_t extra);
/** Frees a buffer's storage (for buffers owned by the host). */
void sb_buffer_free(SBBuffer *b);

/** Conversion error details after SB_CONVERSION. */
int sb_conversion_code(const SBState *S);
const char *sb_conversion_path(const SBState *S);
const char *sb_conversion_detail(const SBState *S);

/* ------------------------------------------------------------------ */
/* Handles, globals, host functions                                    */
/* ------------------------------------------------------------------ */

/** Compiles text (mode "t") under chunk name "@chunkname" and stores the
 *  function as handle `id`. SB_OK, SB_SYNTAX (message in outbuf as one
 *  string value), SB_ABORT (memory). */
int sb_load(SBState *S, const char *source, size_t len, const char *chunkname, int64_t id);
/** Forgets handle `id`. */
int sb_release(SBState *S, int64_t id);
/** Registers a host function as `table.name` (table NULL = global).
 *  The table is created in the globals if absent. */
int sb_register(SBState *S, const char *table, const char *name, int id, int is_async);
/** Sets global `name` to the single value encoded in inbuf. */
int sb_set_global(SBState *S, const char *name);
/** Encodes global `name` (raw access) into outbuf. SB_OK or SB_CONVERSION. */
int sb_get_global(SBState *S, const char *name);
/** Keeps the function in global `name` (raw access) as handle `id`.
 *  SB_OK, or SB_BAD_HANDLE when the global is not a function. */
int sb_ref_global(SBState *S, const char *name, int64_t id);

/** During a host callback: the number of argument slots and the array
 *  where the host stores, per argument (0-based), a handle id (>0) under
 *  which a function argument is kept after the call (0 = not kept). */
int64_t *sb_retain_slots(SBState *S);

/* ------------------------------------------------------------------ */
/* Runs                                                                */
/* ------------------------------------------------------------------ */

/** Prepares a coroutine that will call handle `fn_id` with `nargs` values
 *  decoded from inbuf when it starts. Returns SB_OK (with *co, *coref set),
 *  SB_BAD_HANDLE, SB_ABORT (memory) or SB_ERROR. The first sb_run_resume of
 *  the coroutine must pass nargs = 1 (the function to run). */
int sb_run_prepare(SBState *S, int64_t fn_id, int nargs, lua_State **co, int *coref);
/** Resumes `co` with `nargs` values already on its stack (0 after a host
 *  yield: the results of the host call are taken from inbuf, see
 *  sb_set_host_result). Returns SB_OK (*nres results on co), SB_HOST_YIELD,
 *  SB_SLICE_YIELD (budget->slice_ns passed: resume with nargs 0),
 *  SB_PLAIN_YIELD, SB_ERROR or SB_ABORT. */
int sb_run_resume(SBState *S, lua_State *co, int nargs, SBBudget *budget, int *nres);
/** Encodes the top `nres` values of co into outbuf (raw access only).
 *  SB_OK or SB_CONVERSION. */
int sb_run_results(SBState *S, lua_State *co, int nres);
/** Error details of a failed run into outbuf as 4 values: message (string),
 *  traceback (string), chunk (string or nil), line (integer or nil). */
int sb_error_info(SBState *S, lua_State *co);
/** Releases a run's coroutine: back to the pool when `reusable`. */
void sb_run_finish(SBState *S, lua_State *co, int coref, int reusable);
/** How the pending async host call ends: SB_HOST_RESULT_OK (nresults
 *  values in inbuf), _ERROR or _REJECT (message string in inbuf). */
void sb_set_host_result(SBState *S, int status, int nresults);

/* ------------------------------------------------------------------ */
/* Macro wrappers and small helpers (for host code outside the sandbox) */
/* ------------------------------------------------------------------ */
lua_State *sb_lua_state(SBState *S);
int sbm_pcall(lua_State *L, int nargs, int nresults, int msgh);
void sbm_pop(lua_State *L, int n);
void sbm_newtable(lua_State *L);
const char *sbm_tostring(lua_State *L, int idx);
int sbm_isfunction(lua_State *L, int idx);
lua_Number sbm_tonumber(lua_State *L, int idx);
lua_Integer sbm_tointeger(lua_State *L, int idx);
int sbm_upvalueindex(int i);
int sbm_registryindex(void);
void sbm_pushcfunction(lua_State *L, lua_CFunction f);
int sbm_getglobal(lua_State *L, const char *name);
int sbm_dostring(lua_State *L, const char *code);

#ifdef __cplusplus
}
#endif
#endif
