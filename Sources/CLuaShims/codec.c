/*
 * The flat value codec between Lua and the host (format: CLuaShims.h).
 *
 * Encoding (Lua -> buffer) reads with raw access only (lua_next, lua_rawgeti,
 * lua_rawlen semantics), never runs a metamethod and never raises: it is
 * called from contexts where a longjmp is not allowed to happen. Decoding
 * (buffer -> Lua) pushes values and may raise (allocation): it only runs
 * inside lua_pcall or inside a lua_CFunction.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sb_internal.h"

typedef struct {
    SBState *S;
    SBBuffer *b;
    uint64_t nodes;
    uint32_t depth;
    int allow_functions;
} SBEnc;

/* ------------------------------------------------------------------ */
/* Error reporting                                                     */
/* ------------------------------------------------------------------ */

static int sb_is_ident(const char *s, size_t len) {
    size_t i;
    if (len == 0 || len > 40)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c == '_') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static void sb_append(char *out, size_t cap, size_t *pos, const char *s, size_t len) {
    if (*pos >= cap - 1)
        return;
    if (len > cap - 1 - *pos)
        len = cap - 1 - *pos;
    memcpy(out + *pos, s, len);
    *pos += len;
    out[*pos] = '\0';
}

/* Formats the current path (enc_path[0..depth)) into S->conv_path. */
static void sb_format_path(SBState *S, uint32_t depth) {
    char *out = S->conv_path;
    size_t cap = sizeof S->conv_path, pos = 0;
    uint32_t i;
    out[0] = '\0';
    sb_append(out, cap, &pos, "$", 1);
    for (i = 0; i < depth; i++) {
        const SBPathItem *it = &S->enc_path[i];
        char tmp[64];
        if (it->is_int) {
            int n = snprintf(tmp, sizeof tmp, "[%lld]", (long long)it->i);
            sb_append(out, cap, &pos, tmp, (size_t)n);
        } else if (sb_is_ident(it->s, it->len)) {
            sb_append(out, cap, &pos, ".", 1);
            sb_append(out, cap, &pos, it->s, it->len);
        } else {
            size_t j, shown = it->len > 32 ? 32 : it->len;
            sb_append(out, cap, &pos, "[\"", 2);
            for (j = 0; j < shown; j++) {
                unsigned char c = (unsigned char)it->s[j];
                if (c == '"' || c == '\\') {
                    char e[2] = {'\\', (char)c};
                    sb_append(out, cap, &pos, e, 2);
                } else if (c < 0x20 || c == 0x7f) {
                    int n = snprintf(tmp, sizeof tmp, "\\x%02x", c);
                    sb_append(out, cap, &pos, tmp, (size_t)n);
                } else
                    sb_append(out, cap, &pos, (const char *)&it->s[j], 1);
            }
            if (shown < it->len)
                sb_append(out, cap, &pos, "...", 3);
            sb_append(out, cap, &pos, "\"]", 2);
        }
    }
}

static int sb_fail(SBEnc *e, int code, const char *detail) {
    SBState *S = e->S;
    S->conv_code = code;
    sb_format_path(S, e->depth);
    strncpy(S->conv_detail, detail ? detail : "", sizeof S->conv_detail - 1);
    S->conv_detail[sizeof S->conv_detail - 1] = '\0';
    return code;
}

/* Describes a key that cannot be converted (non-raising). */
static void sb_describe_key(lua_State *L, int idx, char *out, size_t cap) {
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            snprintf(out, cap, "integer key %lld", (long long)lua_tointeger(L, idx));
        else
            snprintf(out, cap, "float key %.14g", (double)lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN:
        snprintf(out, cap, "boolean key %s", lua_toboolean(L, idx) ? "true" : "false");
        break;
    default:
        snprintf(out, cap, "%s key", lua_typename(L, lua_type(L, idx)));
        break;
    }
}

const char *sb_conv_message(SBState *S, char *out, size_t outlen) {
    const char *what;
    switch (S->conv_code) {
    case SB_CONV_FUNCTION: what = "a function value cannot be converted"; break;
    case SB_CONV_USERDATA: what = "a userdata value cannot be converted"; break;
    case SB_CONV_THREAD: what = "a coroutine value cannot be converted"; break;
    case SB_CONV_CYCLE: what = "table cycle"; break;
    case SB_CONV_DEPTH: what = "value nested too deeply"; break;
    case SB_CONV_TOO_LARGE: what = "value too large"; break;
    case SB_CONV_KEY: what = "table key cannot be converted"; break;
    case SB_CONV_MIXED: what = "table mixes array (integer) and object (string) keys"; break;
    case SB_CONV_SPARSE: what = "array too sparse"; break;
    case SB_CONV_NONFINITE: what = "NaN and infinities cannot be converted"; break;
    case SB_CONV_NOMEM: what = "host out of memory"; break;
    default: what = "value cannot be converted"; break;
    }
    if (S->conv_detail[0])
        snprintf(out, outlen, "%s (%s) at %s", what, S->conv_detail, S->conv_path);
    else
        snprintf(out, outlen, "%s at %s", what, S->conv_path);
    return out;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */
/* ------------------------------------------------------------------ */

static int sb_put(SBEnc *e, const void *p, size_t n) {
    if (e->b->len + n > e->S->conv.max_bytes)
        return sb_fail(e, SB_CONV_TOO_LARGE, "encoded size limit");
    if (!sb_buffer_reserve(e->b, n))
        return sb_fail(e, SB_CONV_NOMEM, NULL);
    memcpy(e->b->data + e->b->len, p, n);
    e->b->len += n;
    return SB_CONV_OK;
}

static int sb_put_tag(SBEnc *e, unsigned char tag) { return sb_put(e, &tag, 1); }

static int sb_put_u32(SBEnc *e, uint32_t v) { return sb_put(e, &v, 4); }

static int sb_put_str(SBEnc *e, const char *s, size_t len) {
    uint64_t l = len;
    static const char nul = '\0';
    int rc = sb_put(e, &l, 8);
    if (rc == SB_CONV_OK)
        rc = sb_put(e, s, len);
    if (rc == SB_CONV_OK)
        rc = sb_put(e, &nul, 1);
    return rc;
}

static int sb_enc_value(SBEnc *e, lua_State *L, int idx);

static int sb_is_marked_empty_array(SBState *S, lua_State *L, int idx) {
    int r;
    if (S->emptyarr_ref == LUA_NOREF || !lua_checkstack(L, 2))
        return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->emptyarr_ref);
    lua_pushvalue(L, idx);
    r = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    return r;
}

static int sb_enc_table(SBEnc *e, lua_State *L, int idx) {
    SBState *S = e->S;
    const void *ptr = lua_topointer(L, idx);
    uint64_t n = 0;
    lua_Integer maxk = 0;
    int has_int = 0, has_str = 0, rc;
    uint32_t i, d = e->depth;

    if (d >= S->conv.max_depth) {
        char det[48];
        snprintf(det, sizeof det, "limit %u", (unsigned)S->conv.max_depth);
        return sb_fail(e, SB_CONV_DEPTH, det);
    }
    for (i = 0; i < d; i++)
        if (S->enc_ancestors[i] == ptr)
            return sb_fail(e, SB_CONV_CYCLE, "a table contains itself");
    if (!lua_checkstack(L, 4))
        return sb_fail(e, SB_CONV_NOMEM, "stack");

    /* classify keys */
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int kt = lua_type(L, -2);
        n++;
        if (kt == LUA_TSTRING)
            has_str = 1;
        else if (kt == LUA_TNUMBER && lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
            lua_Integer k = lua_tointeger(L, -2);
            has_int = 1;
            if (k > maxk)
                maxk = k;
        } else {
            char det[96];
            sb_describe_key(L, -2, det, sizeof det);
            lua_pop(L, 2);
            return sb_fail(e, SB_CONV_KEY, det);
        }
        lua_pop(L, 1);
        if (has_int && has_str) {
            lua_pop(L, 1);
            return sb_fail(e, SB_CONV_MIXED, NULL);
        }
    }

    S->enc_ancestors[d] = ptr;
    if (n == 0) {
        if (sb_is_marked_empty_array(S, L, idx)) {
            if ((rc = sb_put_tag(e, SB_TAG_ARRAY)) || (rc = sb_put_u32(e, 0)))
                return rc;
        } else if ((rc = sb_put_tag(e, SB_TAG_OBJECT)) || (rc = sb_put_u32(e, 0)))
            return rc;
        return SB_CONV_OK;
    }
    if (has_int) {
        lua_Integer k;
        if ((uint64_t)maxk > n && (uint64_t)maxk > 2 * n && maxk > 10) {
            char det[96];
            snprintf(det, sizeof det, "highest index %lld with only %llu elements", (long long)maxk,
                     (unsigned long long)n);
            return sb_fail(e, SB_CONV_SPARSE, det);
        }
        if ((rc = sb_put_tag(e, SB_TAG_ARRAY)) || (rc = sb_put_u32(e, (uint32_t)maxk)))
            return rc;
        for (k = 1; k <= maxk; k++) {
            SBPathItem *it = &S->enc_path[d];
            it->is_int = 1;
            it->i = k;
            e->depth = d + 1;
            lua_rawgeti(L, idx, k);
            rc = sb_enc_value(e, L, lua_gettop(L));
            lua_pop(L, 1);
            e->depth = d;
            if (rc)
                return rc;
        }
        return SB_CONV_OK;
    }
    /* object */
    if ((rc = sb_put_tag(e, SB_TAG_OBJECT)) || (rc = sb_put_u32(e, (uint32_t)n)))
        return rc;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t klen;
        const char *ks = lua_tolstring(L, -2, &klen); /* a string: no conversion */
        SBPathItem *it = &S->enc_path[d];
        it->is_int = 0;
        it->s = ks;
        it->len = klen;
        if ((rc = sb_put_str(e, ks, klen))) {
            lua_pop(L, 2);
            return rc;
        }
        e->depth = d + 1;
        rc = sb_enc_value(e, L, lua_gettop(L));
        e->depth = d;
        lua_pop(L, 1);
        if (rc) {
            lua_pop(L, 1);
            return rc;
        }
    }
    return SB_CONV_OK;
}

static int sb_enc_value(SBEnc *e, lua_State *L, int idx) {
    int rc = SB_CONV_OK;
    if (++e->nodes > e->S->conv.max_nodes) {
        char det[48];
        snprintf(det, sizeof det, "more than %llu values", (unsigned long long)e->S->conv.max_nodes);
        return sb_fail(e, SB_CONV_TOO_LARGE, det);
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
    case LUA_TNONE:
        return sb_put_tag(e, SB_TAG_NIL);
    case LUA_TBOOLEAN:
        return sb_put_tag(e, lua_toboolean(L, idx) ? SB_TAG_TRUE : SB_TAG_FALSE);
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            int64_t v = (int64_t)lua_tointeger(L, idx);
            if (!(rc = sb_put_tag(e, SB_TAG_INT)))
                rc = sb_put(e, &v, 8);
        } else {
            double v = (double)lua_tonumber(L, idx);
            if (!isfinite(v))
                return sb_fail(e, SB_CONV_NONFINITE, isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
            if (!(rc = sb_put_tag(e, SB_TAG_FLOAT)))
                rc = sb_put(e, &v, 8);
        }
        return rc;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (!(rc = sb_put_tag(e, SB_TAG_STRING)))
            rc = sb_put_str(e, s, len);
        return rc;
    }
    case LUA_TTABLE:
        return sb_enc_table(e, L, idx);
    case LUA_TFUNCTION:
        if (e->depth == 0 && e->allow_functions)
            return sb_put_tag(e, SB_TAG_FUNCTION);
        return sb_fail(e, SB_CONV_FUNCTION, NULL);
    case LUA_TTHREAD:
        return sb_fail(e, SB_CONV_THREAD, NULL);
    default:
        return sb_fail(e, SB_CONV_USERDATA, NULL);
    }
}

int sb_encode(SBState *S, lua_State *L, int idx, int n, int allow_functions, int *bad_index) {
    SBEnc e;
    int i, rc;
    e.S = S;
    e.b = &S->out;
    e.nodes = 0;
    e.depth = 0;
    e.allow_functions = allow_functions;
    S->conv_code = SB_CONV_OK;
    S->conv_path[0] = '\0';
    S->conv_detail[0] = '\0';
    idx = lua_absindex(L, idx);
    for (i = 0; i < n; i++) {
        rc = sb_enc_value(&e, L, idx + i);
        if (rc != SB_CONV_OK) {
            *bad_index = i;
            return rc;
        }
    }
    return SB_CONV_OK;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */
/* ------------------------------------------------------------------ */

typedef struct {
    lua_State *L;
    SBState *S;
    const unsigned char *p;
    const unsigned char *end;
} SBDec;

static void sb_need(SBDec *d, size_t n) {
    if ((size_t)(d->end - d->p) < n)
        luaL_error(d->L, "malformed value buffer");
}

static uint32_t sb_get_u32(SBDec *d) {
    uint32_t v;
    sb_need(d, 4);
    memcpy(&v, d->p, 4);
    d->p += 4;
    return v;
}

static const char *sb_get_str(SBDec *d, size_t *len) {
    uint64_t l;
    const char *s;
    sb_need(d, 8);
    memcpy(&l, d->p, 8);
    d->p += 8;
    sb_need(d, (size_t)l + 1);
    s = (const char *)d->p;
    if (s[l] != '\0')
        luaL_error(d->L, "malformed value buffer");
    d->p += l + 1;
    *len = (size_t)l;
    return s;
}

/* Object keys short enough to be interned and free of '\0' go through
 * lua_setfield, which uses Lua's string cache keyed by the C address: the
 * buffer is reused, so the keys of similar event tables hit it and skip
 * hashing. (Values vary from event to event: they are pushed directly.) */
#define SB_CACHEABLE(s, len) ((len) <= 40 && memchr((s), 0, (len)) == NULL)

static void sb_dec_value(SBDec *d, int depth) {
    lua_State *L = d->L;
    unsigned char tag;
    if (depth > SB_MAX_DEPTH_CAP)
        luaL_error(L, "value nested too deeply");
    luaL_checkstack(L, 3, "value nested too deeply");
    sb_need(d, 1);
    tag = *d->p++;
    switch (tag) {
    case SB_TAG_NIL:
        lua_pushnil(L);
        break;
    case SB_TAG_FALSE:
        lua_pushboolean(L, 0);
        break;
    case SB_TAG_TRUE:
        lua_pushboolean(L, 1);
        break;
    case SB_TAG_INT: {
        int64_t v;
        sb_need(d, 8);
        memcpy(&v, d->p, 8);
        d->p += 8;
        lua_pushinteger(L, (lua_Integer)v);
        break;
    }
    case SB_TAG_FLOAT: {
        double v;
        sb_need(d, 8);
        memcpy(&v, d->p, 8);
        d->p += 8;
        lua_pushnumber(L, (lua_Number)v);
        break;
    }
    case SB_TAG_STRING: {
        size_t len;
        const char *s = sb_get_str(d, &len);
        lua_pushlstring(L, s, len); /* values vary: no point in the cache */
        break;
    }
    case SB_TAG_ARRAY: {
        uint32_t n = sb_get_u32(d), i;
        lua_createtable(L, (int)(n > 0x7fffffff ? 0 : n), 0);
        if (n == 0) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, d->S->emptyarr_ref);
            lua_pushvalue(L, -2);
            lua_pushboolean(L, 1);
            lua_rawset(L, -3);
            lua_pop(L, 1);
        }
        for (i = 0; i < n; i++) {
            sb_dec_value(d, depth + 1);
            if (lua_isnil(L, -1))
                lua_pop(L, 1); /* a hole */
            else
                lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case SB_TAG_OBJECT: {
        uint32_t n = sb_get_u32(d), i;
        lua_createtable(L, 0, (int)(n > 0x7fffffff ? 0 : n));
        for (i = 0; i < n; i++) {
            size_t klen;
            const char *ks = sb_get_str(d, &klen);
            if (SB_CACHEABLE(ks, klen)) {
                /* a fresh table without metatable: same as rawset */
                sb_dec_value(d, depth + 1);
                if (lua_isnil(L, -1))
                    lua_pop(L, 1); /* nil values are absent keys */
                else
                    lua_setfield(L, -2, ks);
                continue;
            }
            lua_pushlstring(L, ks, klen);
            sb_dec_value(d, depth + 1);
            if (lua_isnil(L, -1))
                lua_pop(L, 2); /* nil values are absent keys */
            else
                lua_rawset(L, -3);
        }
        break;
    }
    default:
        luaL_error(L, "malformed value buffer");
    }
}

void sb_decode(lua_State *L, SBState *S, const SBBuffer *buf, size_t *offset, int n) {
    SBDec d;
    int i;
    d.L = L;
    d.S = S;
    d.p = buf->data ? buf->data + *offset : NULL;
    d.end = buf->data ? buf->data + buf->len : NULL;
    for (i = 0; i < n; i++) {
        if (d.p == NULL)
            luaL_error(L, "malformed value buffer");
        sb_dec_value(&d, 0);
    }
    if (d.p != NULL)
        *offset = (size_t)(d.p - buf->data);
}
