// Lua 5.4 string patterns with a work budget: string.find, string.match, string.gmatch, string.gsub.
//
// Why our own matcher: Lua's is a backtracking matcher that runs as one C call, so the count hook cannot stop it,
// and `.-` repeated k times costs O(n^k) on a failing subject (string.find(("a"):rep(1e6), ".-.-.-.-b") runs for
// hours). Length caps alone cannot bound that. This matcher implements the same pattern language and the same
// function semantics as Lua 5.4's string library, and additionally counts "steps" (one per character test, per
// recursive match call, per byte compared by a back-reference): beyond `pattern_step_max` steps the call fails
// with "pattern too complex", and every 65536 steps it polls the script's deadline, so a slow pattern also
// respects the time limit.
//
// Pattern language (Lua 5.4 manual §6.4.1): single-character classes `.`, `%a %c %d %g %l %p %s %u %w %x` and
// their upper-case complements, `%x` escapes, sets `[...]` / `[^...]` with ranges and classes; quantifiers
// `* + - ?`; anchors `^` (start, not in gmatch) and `$` (end); captures `(...)` and position captures `()`;
// back-references `%1`-`%9`; `%bxy` balanced pairs; `%f[set]` frontiers.
#include "internal.h"

#include <ctype.h>
#include <string.h>

#define MAX_CAPTURES 32
#define MAX_RECURSION 200
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define ESC '%'
#define POLL_INTERVAL 65536

typedef struct matcher {
    const char *src_init;   // subject
    const char *src_end;
    const char *pat_end;
    lua_State *L;
    const char *fname;      // for messages, e.g. "string.find"
    int level;              // captures open or closed so far
    int depth;              // recursion left
    uint64_t steps;
    uint64_t step_max;
    uint64_t next_poll;
    struct {
        const char *init;
        ptrdiff_t len;      // >= 0, CAP_UNFINISHED or CAP_POSITION
    } capture[MAX_CAPTURES];
} matcher;

static inline int uchar(char c) { return (unsigned char)c; }

static void poll(matcher *m) {
    if (m->steps > m->step_max) {
        luaL_error(m->L, "%s: pattern too complex (more than %I matching steps)", m->fname, (lua_Integer)m->step_max);
    }
    tml_budget_poll(m->L);
    uint64_t next = m->steps + POLL_INTERVAL;
    m->next_poll = next <= m->step_max ? next : m->step_max + 1;
}

static inline void tick(matcher *m, uint64_t n) {
    m->steps += n;
    if (m->steps >= m->next_poll) poll(m);
}

static void matcher_init(matcher *m, lua_State *L, const char *fname, const char *s, size_t ls, const char *p,
                         size_t lp) {
    tml_state *S = tml_state_of(L);
    m->L = L;
    m->fname = fname;
    m->src_init = s;
    m->src_end = s + ls;
    m->pat_end = p + lp;
    m->level = 0;
    m->depth = MAX_RECURSION;
    m->steps = 0;
    m->step_max = S->limits.pattern_step_max != 0 ? S->limits.pattern_step_max : UINT64_MAX - 1;
    m->next_poll = POLL_INTERVAL <= m->step_max ? POLL_INTERVAL : m->step_max + 1;
}

// Before each attempt at a new start position (the step count keeps accumulating over the whole call).
static void matcher_restart(matcher *m) {
    m->level = 0;
    m->depth = MAX_RECURSION;
}

static void check_limits(lua_State *L, const char *fname, size_t subject, size_t pattern) {
    const tml_limits *limits = &tml_state_of(L)->limits;
    if (limits->pattern_subject_max != 0 && subject > limits->pattern_subject_max) {
        luaL_error(L, "%s: a subject of %I bytes exceeds the limit of %I bytes", fname, (lua_Integer)subject,
                   (lua_Integer)limits->pattern_subject_max);
    }
    if (limits->pattern_length_max != 0 && pattern > limits->pattern_length_max) {
        luaL_error(L, "%s: a pattern of %I bytes exceeds the limit of %I bytes", fname, (lua_Integer)pattern,
                   (lua_Integer)limits->pattern_length_max);
    }
}

// MARK: - Classes and sets

// The end of the single-character class starting at p (one past it).
static const char *class_end(matcher *m, const char *p) {
    char c = *p++;
    if (c == ESC) {
        if (p >= m->pat_end) luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (p < m->pat_end && *p == '^') p++;
        do {  // the first character after '[' or '[^' is a member even if it is ']'
            if (p >= m->pat_end) luaL_error(m->L, "malformed pattern (missing ']')");
            c = *p++;
            if (c == ESC && p < m->pat_end) p++;  // an escaped character, e.g. "%]"
        } while (p >= m->pat_end || *p != ']');
        return p + 1;
    }
    return p;
}

static int match_class(int c, int cl) {
    int res;
    switch (tolower(cl)) {
    case 'a': res = isalpha(c); break;
    case 'c': res = iscntrl(c); break;
    case 'd': res = isdigit(c); break;
    case 'g': res = isgraph(c); break;
    case 'l': res = islower(c); break;
    case 'p': res = ispunct(c); break;
    case 's': res = isspace(c); break;
    case 'u': res = isupper(c); break;
    case 'w': res = isalnum(c); break;
    case 'x': res = isxdigit(c); break;
    case 'z': res = (c == 0); break;  // deprecated in Lua 5.2, still accepted by 5.4
    default: return cl == c;  // an escaped non-class character stands for itself
    }
    if (isupper(cl)) res = !res;
    return res != 0;
}

// Whether c is in the set [p, ec] (p at '[', ec at the closing ']').
static int match_set(int c, const char *p, const char *ec) {
    int member = 1;
    if (*(p + 1) == '^') {
        member = 0;
        p++;
    }
    while (++p < ec) {
        if (*p == ESC) {
            p++;
            if (match_class(c, uchar(*p))) return member;
        } else if (*(p + 1) == '-' && p + 2 < ec) {
            p += 2;
            if (uchar(*(p - 2)) <= c && c <= uchar(*p)) return member;
        } else if (uchar(*p) == c) {
            return member;
        }
    }
    return !member;
}

// Whether the subject character at s matches the class [p, ep).
static int single_match(matcher *m, const char *s, const char *p, const char *ep) {
    if (s >= m->src_end) return 0;
    tick(m, 1);
    int c = uchar(*s);
    switch (*p) {
    case '.': return 1;
    case ESC: return match_class(c, uchar(*(p + 1)));
    case '[': return match_set(c, p, ep - 1);
    default: return uchar(*p) == c;
    }
}

// MARK: - Matching

static const char *do_match(matcher *m, const char *s, const char *p);

static const char *match_balance(matcher *m, const char *s, const char *p) {
    if (p + 1 >= m->pat_end) luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->src_end || *s != *p) return NULL;
    char open = *p, close = *(p + 1);
    int depth = 1;
    while (++s < m->src_end) {
        tick(m, 1);
        if (*s == close) {
            if (--depth == 0) return s + 1;
        } else if (*s == open) {
            depth++;
        }
    }
    return NULL;
}

static const char *max_expand(matcher *m, const char *s, const char *p, const char *ep) {
    ptrdiff_t i = 0;
    while (single_match(m, s + i, p, ep)) i++;
    while (i >= 0) {  // try the longest repetition first, then back off one at a time
        const char *res = do_match(m, s + i, ep + 1);
        if (res != NULL) return res;
        i--;
    }
    return NULL;
}

static const char *min_expand(matcher *m, const char *s, const char *p, const char *ep) {
    for (;;) {
        const char *res = do_match(m, s, ep + 1);
        if (res != NULL) return res;
        if (!single_match(m, s, p, ep)) return NULL;
        s++;
    }
}

static const char *start_capture(matcher *m, const char *s, const char *p, ptrdiff_t what) {
    if (m->level >= MAX_CAPTURES) luaL_error(m->L, "too many captures");
    m->capture[m->level].init = s;
    m->capture[m->level].len = what;
    m->level++;
    const char *res = do_match(m, s, p);
    if (res == NULL) m->level--;
    return res;
}

static const char *end_capture(matcher *m, const char *s, const char *p) {
    int l = m->level - 1;
    while (l >= 0 && m->capture[l].len != CAP_UNFINISHED) l--;
    if (l < 0) luaL_error(m->L, "invalid pattern capture");
    m->capture[l].len = s - m->capture[l].init;
    const char *res = do_match(m, s, p);
    if (res == NULL) m->capture[l].len = CAP_UNFINISHED;
    return res;
}

static const char *match_backreference(matcher *m, const char *s, int digit) {
    int l = digit - '1';
    if (l < 0 || l >= m->level || m->capture[l].len == CAP_UNFINISHED) {
        luaL_error(m->L, "invalid capture index %%%d", l + 1);
    }
    ptrdiff_t len = m->capture[l].len;
    if (len < 0) return NULL;  // a position capture: never matches text (as in Lua)
    if ((size_t)(m->src_end - s) < (size_t)len) return NULL;
    tick(m, 1 + (uint64_t)len / 16);
    return memcmp(m->capture[l].init, s, (size_t)len) == 0 ? s + len : NULL;
}

// The end of the match of pattern [p, pat_end) at s, or NULL. Tail positions loop instead of recursing.
static const char *do_match(matcher *m, const char *s, const char *p) {
    if (m->depth-- == 0) luaL_error(m->L, "pattern too complex");
    tick(m, 1);
    while (p < m->pat_end) {
        switch (*p) {
        case '(':
            if (p + 1 < m->pat_end && *(p + 1) == ')') s = start_capture(m, s, p + 2, CAP_POSITION);
            else s = start_capture(m, s, p + 1, CAP_UNFINISHED);
            goto done;
        case ')':
            s = end_capture(m, s, p + 1);
            goto done;
        case '$':
            if (p + 1 != m->pat_end) goto single;  // '$' not at the end is a plain character
            s = (s == m->src_end) ? s : NULL;
            goto done;
        case ESC:
            if (p + 1 >= m->pat_end) goto single;  // class_end reports the malformed pattern
            switch (*(p + 1)) {
            case 'b':
                s = match_balance(m, s, p + 2);
                if (s == NULL) goto done;
                p += 4;
                continue;
            case 'f': {
                p += 2;
                if (p >= m->pat_end || *p != '[') luaL_error(m->L, "missing '[' after '%%f' in pattern");
                const char *ep = class_end(m, p);
                int previous = (s == m->src_init) ? '\0' : uchar(*(s - 1));
                int current = (s < m->src_end) ? uchar(*s) : '\0';
                if (!match_set(previous, p, ep - 1) && match_set(current, p, ep - 1)) {
                    p = ep;
                    continue;
                }
                s = NULL;
                goto done;
            }
            case '0': case '1': case '2': case '3': case '4':
            case '5': case '6': case '7': case '8': case '9':
                s = match_backreference(m, s, uchar(*(p + 1)));
                if (s == NULL) goto done;
                p += 2;
                continue;
            default:
                goto single;
            }
        default:
        single: {
            const char *ep = class_end(m, p);
            int suffix = ep < m->pat_end ? *ep : '\0';
            if (!single_match(m, s, p, ep)) {
                if (suffix == '*' || suffix == '?' || suffix == '-') {  // zero repetitions are fine
                    p = ep + 1;
                    continue;
                }
                s = NULL;
                goto done;
            }
            switch (suffix) {
            case '?': {
                const char *res = do_match(m, s + 1, ep + 1);
                if (res != NULL) {
                    s = res;
                    goto done;
                }
                p = ep + 1;
                continue;
            }
            case '+': s = max_expand(m, s + 1, p, ep); goto done;
            case '*': s = max_expand(m, s, p, ep); goto done;
            case '-': s = min_expand(m, s, p, ep); goto done;
            default:
                s++;
                p = ep;
                continue;
            }
        }
        }
    }
done:
    m->depth++;
    return s;
}

// MARK: - Captures

// Pushes capture i, or the whole match [s, e) when there are no captures and i == 0.
static void push_capture(matcher *m, int i, const char *s, const char *e) {
    if (i >= m->level) {
        if (i != 0) luaL_error(m->L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(m->L, s, (size_t)(e - s));
        return;
    }
    ptrdiff_t len = m->capture[i].len;
    if (len == CAP_UNFINISHED) luaL_error(m->L, "unfinished capture");
    if (len == CAP_POSITION) lua_pushinteger(m->L, (lua_Integer)(m->capture[i].init - m->src_init) + 1);
    else lua_pushlstring(m->L, m->capture[i].init, (size_t)len);
}

// Pushes all captures (or the whole match if s != NULL and there are none); returns their number.
static int push_captures(matcher *m, const char *s, const char *e) {
    int n = (m->level == 0 && s != NULL) ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++) push_capture(m, i, s, e);
    return n;
}

// MARK: - Library functions

// Lua 5.4's start position: negative counts from the end, 0 and anything before the start mean 1.
static size_t start_position(lua_Integer pos, size_t length) {
    if (pos > 0) return (size_t)pos;
    if (pos == 0) return 1;
    if (pos < -(lua_Integer)length) return 1;
    return length + (size_t)pos + 1;
}

static int has_specials(const char *p, size_t lp) {
    for (size_t i = 0; i < lp; i++) {
        if (p[i] != '\0' && strchr("^$*+?.([%-", p[i]) != NULL) return 1;
    }
    return 0;
}

static const char *find_plain(const char *s, size_t ls, const char *p, size_t lp) {
    if (lp == 0) return s;
    if (lp > ls) return NULL;
    const char *last = s + (ls - lp);  // the last possible start
    while (s <= last) {
        const char *hit = (const char *)memchr(s, *p, (size_t)(last - s) + 1);
        if (hit == NULL) return NULL;
        if (memcmp(hit + 1, p + 1, lp - 1) == 0) return hit;
        s = hit + 1;
    }
    return NULL;
}

static int find_or_match(lua_State *L, int find) {
    const char *fname = find ? "string.find" : "string.match";
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_position(luaL_optinteger(L, 3, 1), ls) - 1;
    check_limits(L, fname, ls, lp);
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        const char *hit = find_plain(s + init, ls - init, p, lp);
        if (hit != NULL) {
            lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
            lua_pushinteger(L, (lua_Integer)(hit - s + lp));
            return 2;
        }
    } else {
        int anchor = (lp > 0 && *p == '^');
        if (anchor) {
            p++;
            lp--;
        }
        matcher m;
        matcher_init(&m, L, fname, s, ls, p, lp);
        const char *s1 = s + init;
        do {
            matcher_restart(&m);
            const char *e = do_match(&m, s1, p);
            if (e != NULL) {
                if (find) {
                    lua_pushinteger(L, (lua_Integer)(s1 - s) + 1);
                    lua_pushinteger(L, (lua_Integer)(e - s));
                    return push_captures(&m, NULL, NULL) + 2;
                }
                return push_captures(&m, s1, e);
            }
        } while (s1++ < m.src_end && !anchor);
    }
    luaL_pushfail(L);
    return 1;
}

int tml_str_find(lua_State *L) { return find_or_match(L, 1); }
int tml_str_match(lua_State *L) { return find_or_match(L, 0); }

typedef struct gmatch_state {
    size_t position;   // next start offset
    size_t last_end;   // end offset of the previous match, to skip an empty match right after it
    int has_last;
} gmatch_state;

// The iterator: upvalues subject, pattern, state. Each call has its own step budget.
static int gmatch_next(lua_State *L) {
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
    gmatch_state *g = (gmatch_state *)lua_touserdata(L, lua_upvalueindex(3));
    matcher m;
    matcher_init(&m, L, "string.gmatch", s, ls, p, lp);
    for (size_t start = g->position; start <= ls; start++) {
        matcher_restart(&m);
        const char *e = do_match(&m, s + start, p);
        if (e != NULL && !(g->has_last && (size_t)(e - s) == g->last_end)) {
            g->position = g->last_end = (size_t)(e - s);
            g->has_last = 1;
            return push_captures(&m, s + start, e);
        }
    }
    g->position = ls + 1;
    return 0;
}

int tml_str_gmatch(lua_State *L) {
    size_t ls, lp;
    luaL_checklstring(L, 1, &ls);
    luaL_checklstring(L, 2, &lp);
    size_t init = start_position(luaL_optinteger(L, 3, 1), ls) - 1;
    check_limits(L, "string.gmatch", ls, lp);
    if (init > ls) init = ls + 1;
    lua_settop(L, 2);
    gmatch_state *g = (gmatch_state *)lua_newuserdatauv(L, sizeof(gmatch_state), 0);
    g->position = init;
    g->last_end = 0;
    g->has_last = 0;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

// Appends the replacement string (argument 3) for the match [s, e): "%0" is the match, "%1".."%9" captures,
// "%%" a percent sign.
static void add_string(matcher *m, luaL_Buffer *b, const char *s, const char *e) {
    lua_State *L = m->L;
    size_t l;
    const char *news = lua_tolstring(L, 3, &l);
    const char *end = news + l;
    const char *p;
    while ((p = (const char *)memchr(news, ESC, (size_t)(end - news))) != NULL) {
        luaL_addlstring(b, news, (size_t)(p - news));
        p++;
        if (p < end && *p == ESC) {
            luaL_addchar(b, ESC);
        } else if (p < end && *p == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (p < end && isdigit(uchar(*p))) {
            push_capture(m, *p - '1', s, e);
            luaL_tolstring(L, -1, NULL);  // a position capture is an integer
            lua_remove(L, -2);
            luaL_addvalue(b);
        } else {
            luaL_error(L, "invalid use of '%c' in replacement string", ESC);
        }
        news = p + 1;
    }
    luaL_addlstring(b, news, (size_t)(end - news));
}

// Appends the replacement for [s, e); returns whether the text changed.
static int add_value(matcher *m, luaL_Buffer *b, const char *s, const char *e, int tr) {
    lua_State *L = m->L;
    switch (tr) {
    case LUA_TFUNCTION: {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
        break;
    }
    case LUA_TTABLE:
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
        break;
    default:
        add_string(m, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) {  // nil or false: keep the original text
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return 0;
    }
    if (!lua_isstring(L, -1)) return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

int tml_str_gsub(lua_State *L) {
    size_t srcl, lp;
    const char *src = luaL_checklstring(L, 1, &srcl);
    const char *p = luaL_checklstring(L, 2, &lp);
    int tr = lua_type(L, 3);
    lua_Integer max_s = luaL_optinteger(L, 4, (lua_Integer)srcl + 1);
    luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                     "string/function/table");
    check_limits(L, "string.gsub", srcl, lp);
    int anchor = (lp > 0 && *p == '^');
    if (anchor) {
        p++;
        lp--;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    matcher m;
    matcher_init(&m, L, "string.gsub", src, srcl, p, lp);
    const char *lastmatch = NULL;
    lua_Integer n = 0;
    int changed = 0;
    while (n < max_s) {
        matcher_restart(&m);
        const char *e = do_match(&m, src, p);
        if (e != NULL && e != lastmatch) {
            n++;
            changed = add_value(&m, &b, src, e, tr) | changed;
            src = lastmatch = e;
        } else if (src < m.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor) break;
    }
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, src, (size_t)(m.src_end - src));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}
