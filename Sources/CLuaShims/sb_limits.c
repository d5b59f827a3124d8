/*
 * Limits: the clocks, the sticky abort, the run's budget, the count hook
 * (which also pauses a run at the end of its slice) and the byte-limited
 * allocator (which also charges what C functions produce).
 *
 * They share one file because together they are the only way a run can be
 * stopped: the hook and the step charges of the ported C loops draw on the
 * same budget and deadline, and every limit ends in the same sticky abort,
 * which every function that can catch an error rethrows (see
 * docs/LUASANDBOX.md, "Limits and aborts").
 */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_internal.h"

/* The error value raised by instruction/deadline aborts. */
static char sb_abort_sentinel;

/* ================================================================== */
/* Clock, aborts, budget                                               */
/* ================================================================== */

uint64_t sb_now_ns(void) {
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    /* a few ms of resolution is plenty for deadlines, and it is ~5x cheaper */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t sb_thread_cpu_ns(void) {
    struct timespec ts;
    /* a system call (no vDSO for thread clocks): read only at count hooks,
     * so a run that never reaches one never pays for it */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Records the first Lua frame of L as the abort location. Non-raising. */
static void sb_record_location(SBState *S, lua_State *L) {
    lua_Debug ar;
    int level;
    S->abort_src[0] = '\0';
    S->abort_line = 0;
    for (level = 0; level < 64 && lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            strncpy(S->abort_src, ar.short_src, sizeof S->abort_src - 1);
            S->abort_src[sizeof S->abort_src - 1] = '\0';
            S->abort_line = ar.currentline;
            return;
        }
    }
}

void sb_set_abort_at(SBState *S, lua_State *L, int reason) {
    if (S->aborting)
        return;
    S->aborting = reason;
    if (L != NULL)
        sb_record_location(S, L);
}

int sb_raise_abort(lua_State *L) {
    if (!lua_checkstack(L, 1) && lua_gettop(L) > 0)
        lua_pop(L, 1); /* make room for the error value */
    lua_pushlightuserdata(L, &sb_abort_sentinel);
    return lua_error(L);
}

/* Charges `steps` to the run's budget; raises the abort when a limit is hit
 * (or the state is already aborting). Only from C functions called by Lua. */
void sb_charge(lua_State *L, int64_t steps) {
    SBState *S = sb_state_of(L);
    if (!S->aborting) {
        S->remaining -= steps;
        if (S->remaining < 0)
            sb_set_abort_at(S, L, SB_ABORT_INSTRUCTIONS);
        else if (S->deadline_ns != 0 && sb_now_ns() >= S->deadline_ns)
            sb_set_abort_at(S, L, SB_ABORT_DEADLINE);
        else
            return;
    }
    sb_raise_abort(L);
}

void sb_charge_lazy(lua_State *L, int64_t steps) {
    SBState *S = sb_state_of(L);
    S->remaining -= steps;
}

void sb_charge_host(SBState *S, int64_t steps) { S->remaining -= steps; }

/* Adds the CPU time since the previous hook of this resume to the run's. */
static void sb_account_cpu(SBState *S) {
    uint64_t now = sb_thread_cpu_ns();
    if (S->cpu_mark_ns != 0 && now > S->cpu_mark_ns)
        S->cpu_used_ns += now - S->cpu_mark_ns;
    S->cpu_mark_ns = now;
}

struct SBWaitingWork {
    _Atomic long waiting;
    _Atomic long ignored;
};

SBWaitingWork *sb_waiting_work_new(void) {
    SBWaitingWork *w = malloc(sizeof *w);
    if (w) {
        atomic_init(&w->waiting, 0);
        atomic_init(&w->ignored, 0);
    }
    return w;
}

void sb_waiting_work_free(SBWaitingWork *w) { free(w); }

void sb_waiting_work_add(SBWaitingWork *w, long delta) {
    atomic_fetch_add_explicit(&w->waiting, delta, memory_order_relaxed);
}

void sb_waiting_work_ignore(SBWaitingWork *w, long delta) {
    atomic_fetch_add_explicit(&w->ignored, delta, memory_order_relaxed);
}

long sb_waiting_work_pending(const SBWaitingWork *w) {
    return atomic_load_explicit(&w->waiting, memory_order_relaxed)
        - atomic_load_explicit(&w->ignored, memory_order_relaxed);
}

void sb_set_waiting_work(SBState *S, const SBWaitingWork *w) { S->waiting = w; }

/* Whether the current resume should pause: its slice is over, or it has had
 * its shortest slice and other work waits for the thread. Relaxed loads: a
 * count seen a hook late costs a few microseconds. */
static int sb_slice_over(SBState *S) {
    uint64_t now = sb_now_ns();
    if (now >= S->slice_end_ns)
        return 1;
    return S->waiting != NULL && now >= S->slice_min_end_ns && sb_waiting_work_pending(S->waiting) > 0;
}

/* The count hook: every `hook_interval` VM instructions, in every thread.
 * Charges the budget, checks the deadline and the CPU limit, and pauses the
 * run once its slice is over, if it can be paused here (not inside a
 * metamethod or another call made from C): Lua 5.4 lets a count hook yield,
 * and the instruction it interrupted is carried on when the run resumes.
 * The pause travels like an async host call (host_yield), so that a nested
 * coroutine passes it out to the run's (sb_corolib.c). */
void sb_hook(lua_State *L, lua_Debug *ar) {
    SBState *S = sb_state_of(L);
    (void)ar;
    if (lua_gethookcount(L) != (int)S->hook_interval) {
        /* armed by the allocator after a large allocation: one instruction */
        lua_sethook(L, sb_hook, LUA_MASKCOUNT, (int)S->hook_interval);
        sb_charge(L, 1);
    } else {
        sb_charge(L, S->hook_interval);
    }
    if (S->cpu_limit_ns != 0) {
        sb_account_cpu(S);
        if (S->cpu_used_ns > S->cpu_limit_ns) {
            sb_set_abort_at(S, L, SB_ABORT_CPU);
            sb_raise_abort(L);
        }
    }
    if (S->slice_end_ns != 0 && sb_slice_over(S) && lua_isyieldable(L)) {
        S->slice_yield = 1;
        S->host_yield = 1;
        SB_TFLAGS(L) |= SB_TF_WAIT;
        lua_yield(L, 0); /* returns; the VM yields once the hook is done */
    }
}

/* A pause that could not be passed out (sb_corolib.c): the next try after
 * another slice. */
void sb_slice_refused(SBState *S) {
    S->slice_yield = 0;
    S->host_yield = 0;
    S->slice_end_ns = sb_now_ns() + S->slice_ns;
    S->slice_min_end_ns = S->slice_end_ns;
}

/* After a protected call inside the sandbox returned `status` (an error
 * with its value on top): rethrow if the run is aborting. */
void sb_rethrow_if_aborting(lua_State *L, int status) {
    SBState *S = sb_state_of(L);
    if (status == LUA_ERRMEM)
        sb_set_abort_at(S, L, SB_ABORT_MEMORY);
    if (S->aborting)
        lua_error(L);
}

/* ================================================================== */
/* Allocator                                                           */
/* ================================================================== */

void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    SBState *S = (SBState *)ud;
    if (ptr == NULL)
        osize = 0; /* osize then encodes the object type */
    if (nsize == 0) {
        free(ptr);
        S->mem_used -= osize;
        return NULL;
    }
    if (nsize > osize) {
        size_t grow = nsize - osize;
        if (S->mem_used > S->mem_limit || grow > S->mem_limit - S->mem_used)
            return NULL; /* over the ceiling: Lua raises LUA_ERRMEM */
        /* charged, never raised here (an allocator must not): a run that
         * spent its budget this way is aborted at its next count hook or
         * charged step; one C call can produce at most the memory ceiling */
        S->remaining -= (int64_t)(grow / SB_BYTES_PER_STEP);
        /* Work of this size happens inside C (string.rep, table.concat,
         * `..`): a run that does little else reaches its count hook only
         * every thousand such calls, tens of milliseconds past its slice.
         * Once a pause is due, arm the hook for the next instruction; it
         * pauses the run and restores the interval (the instructions
         * counted since the previous hook go uncharged, once a slice). */
        if (grow >= (size_t)S->hook_interval * SB_BYTES_PER_STEP && S->slice_end_ns != 0 && S->running != NULL
            && sb_slice_over(S))
            lua_sethook(S->running, sb_hook, LUA_MASKCOUNT, 1);
    }
    {
        void *np = realloc(ptr, nsize);
        if (np == NULL)
            return NULL;
        S->mem_used = S->mem_used - osize + nsize;
        if (S->mem_used > S->mem_peak)
            S->mem_peak = S->mem_used;
        return np;
    }
}

int sb_abort_reason(const SBState *S) { return S->aborting; }
void sb_mark_abort(SBState *S, lua_State *co, int reason) { sb_set_abort_at(S, co, reason); }
const char *sb_abort_source(const SBState *S) { return S->abort_src; }
int sb_abort_line(const SBState *S) { return S->abort_line; }
size_t sb_memory_used(const SBState *S) { return S->mem_used; }
size_t sb_memory_peak(const SBState *S) { return S->mem_peak; }
size_t sb_memory_limit(const SBState *S) { return S->mem_limit; }
void sb_set_memory_limit(SBState *S, size_t limit) { S->mem_limit = limit; }
