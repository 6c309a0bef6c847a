/*
 * flightrec._redact_native: the two costs of a string full of PII, in C.
 *
 * - Keyed(key, digest_size): the pseudonym hash, keyed BLAKE2s (RFC 7693), as
 *   hashlib.blake2s(value, key=key, digest_size=digest_size).hexdigest() computes it.
 *   The state after the key block is computed once, so a short value costs one
 *   compression and no Python call.
 * - scan(): the match loop of Redactor._scan. The regular expression stays in Python;
 *   this replaces the interpreted bookkeeping between matches (a handler lookup, span
 *   arithmetic, the e-mail local part, building the output).
 * - chk_card(), chk_ipv6(): the two costliest validators of candidates.
 * - DictWalk: the redaction walk of a dict (every event is one), calling the Redactor's
 *   Python helpers for everything but the common values.
 * - digits_may_match(): a one-pass test that lets text full of digits skip the pattern's
 *   digit-triggered fragments when none of them can match; light_may_match(), its twin for
 *   the other fragments, lets clean text skip the pattern altogether.
 *
 * Optional, like _fastpath: without it (no compiler, or FLIGHTREC_PURE_PYTHON=1) the
 * Python twins in flightrec/redact/ run, with the same results.
 * tests/test_redact_native.py checks both against each other and against hashlib.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "_msgpack.h"

/* ---------------------------------------------------------------- keyed BLAKE2s */

static const uint32_t blake2s_iv[8] = {
    0x6A09E667UL, 0xBB67AE85UL, 0x3C6EF372UL, 0xA54FF53AUL,
    0x510E527FUL, 0x9B05688CUL, 0x1F83D9ABUL, 0x5BE0CD19UL,
};

static const uint8_t blake2s_sigma[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static inline uint32_t
rotr32(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static inline uint32_t
load32_le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

#define B2S_G(a, b, c, d, x, y)          \
    do {                                 \
        a = a + b + (x);                 \
        d = rotr32(d ^ a, 16);           \
        c = c + d;                       \
        b = rotr32(b ^ c, 12);           \
        a = a + b + (y);                 \
        d = rotr32(d ^ a, 8);            \
        c = c + d;                       \
        b = rotr32(b ^ c, 7);            \
    } while (0)

/* One compression of a 64-byte block; t is the byte count so far, including this block. */
static void
blake2s_compress(uint32_t h[8], const uint8_t block[64], uint64_t t, int last)
{
    uint32_t m[16], v[16];
    for (int i = 0; i < 16; i++) {
        m[i] = load32_le(block + 4 * i);
    }
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = blake2s_iv[i];
    }
    v[12] ^= (uint32_t)t;
    v[13] ^= (uint32_t)(t >> 32);
    if (last) {
        v[14] = ~v[14];
    }
    for (int r = 0; r < 10; r++) {
        const uint8_t *s = blake2s_sigma[r];
        B2S_G(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]]);
        B2S_G(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]]);
        B2S_G(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]]);
        B2S_G(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]]);
        B2S_G(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]]);
        B2S_G(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]]);
        B2S_G(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]]);
        B2S_G(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) {
        h[i] ^= v[i] ^ v[i + 8];
    }
}

typedef struct {
    PyObject_HEAD
    uint32_t after_key[8]; /* the state once the key block is compressed (not last) */
    uint32_t empty[8];     /* the final state for an empty value (the key block is last) */
    int digest_size;
} Keyed;

/* Keyed BLAKE2s of data into hex (2 * digest_size characters). */
static PyObject *
keyed_hex(Keyed *self, const uint8_t *data, Py_ssize_t n)
{
    uint32_t h[8];
    if (n == 0) {
        memcpy(h, self->empty, sizeof h);
    }
    else {
        memcpy(h, self->after_key, sizeof h);
        uint64_t t = 64;
        while (n > 64) {
            t += 64;
            blake2s_compress(h, data, t, 0);
            data += 64;
            n -= 64;
        }
        uint8_t block[64] = {0};
        memcpy(block, data, (size_t)n);
        blake2s_compress(h, block, t + (uint64_t)n, 1);
    }
    static const char hexdigits[] = "0123456789abcdef";
    char out[64];
    for (int i = 0; i < self->digest_size; i++) {
        uint8_t byte = (uint8_t)(h[i / 4] >> (8 * (i % 4)));
        out[2 * i] = hexdigits[byte >> 4];
        out[2 * i + 1] = hexdigits[byte & 15];
    }
    return PyUnicode_FromStringAndSize(out, 2 * self->digest_size);
}

/* The pseudonym hash of a str: over its UTF-8 (lone surrogates passed through, like
 * str.encode("utf-8", "surrogatepass")). */
static PyObject *
keyed_str(Keyed *self, PyObject *value)
{
    if (!PyUnicode_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "Keyed() takes a str");
        return NULL;
    }
    Py_ssize_t n;
    const char *utf8 = PyUnicode_AsUTF8AndSize(value, &n);
    if (utf8 != NULL) {
        return keyed_hex(self, (const uint8_t *)utf8, n);
    }
    if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
        return NULL;
    }
    PyErr_Clear();
    PyObject *raw = PyUnicode_AsEncodedString(value, "utf-8", "surrogatepass");
    if (raw == NULL) {
        return NULL;
    }
    PyObject *out = keyed_hex(self, (const uint8_t *)PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw));
    Py_DECREF(raw);
    return out;
}

static PyObject *
Keyed_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *value;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "Keyed() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "U:Keyed", &value)) {
        return NULL;
    }
    return keyed_str((Keyed *)self, value);
}

static PyObject *
Keyed_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"key", "digest_size", NULL};
    Py_buffer key;
    int digest_size;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*i:Keyed", kwlist, &key, &digest_size)) {
        return NULL;
    }
    if (key.len < 1 || key.len > 32 || digest_size < 1 || digest_size > 32) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "Keyed: a key of 1-32 bytes and a digest_size of 1-32");
        return NULL;
    }
    Keyed *self = (Keyed *)type->tp_alloc(type, 0);
    if (self == NULL) {
        PyBuffer_Release(&key);
        return NULL;
    }
    self->digest_size = digest_size;
    uint32_t h[8];
    memcpy(h, blake2s_iv, sizeof h);
    h[0] ^= 0x01010000UL ^ ((uint32_t)key.len << 8) ^ (uint32_t)digest_size;
    uint8_t block[64] = {0};
    memcpy(block, key.buf, (size_t)key.len);
    PyBuffer_Release(&key);
    memcpy(self->after_key, h, sizeof h);
    blake2s_compress(self->after_key, block, 64, 0);
    memcpy(self->empty, h, sizeof h);
    blake2s_compress(self->empty, block, 64, 1);
    memset(block, 0, sizeof block);  /* the key itself is not kept */
    return (PyObject *)self;
}

static PyObject *
Keyed_reduce(PyObject *self, PyObject *unused)
{
    PyErr_SetString(PyExc_TypeError, "Keyed holds key material and cannot be pickled or copied");
    return NULL;
}

static PyMethodDef Keyed_methods[] = {
    {"__reduce__", Keyed_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KeyedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "flightrec._redact_native.Keyed",
    .tp_basicsize = sizeof(Keyed),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Keyed(key, digest_size)(value: str) -> hex: keyed BLAKE2s of value's UTF-8,\n"
              "equal to hashlib.blake2s(value.encode(), key=key, digest_size=digest_size).hexdigest().",
    .tp_new = Keyed_new,
    .tp_call = Keyed_call,
    .tp_methods = Keyed_methods,
};

/* ---------------------------------------------------------------- validators */

/* The C twins of redact.checks._chk_card and _chk_ipv6, for the (text, a, b) candidates
 * the scanner gives them: check(text, a, b) -> (a, b) | None, as in Python. */

/* The arguments of a check, and the text's storage; -1 with an exception when they are wrong. */
typedef struct {
    Py_ssize_t a, b, n;
    int kind;
    const void *data;
} CheckArgs;

static int
parse_check_args(PyObject *const *args, Py_ssize_t nargs, const char *name, CheckArgs *c)
{
    if (nargs != 3 || !PyUnicode_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s(text: str, a: int, b: int)", name);
        return -1;
    }
    c->a = PyLong_AsSsize_t(args[1]);
    if (c->a == -1 && PyErr_Occurred()) {
        return -1;
    }
    c->b = PyLong_AsSsize_t(args[2]);
    if (c->b == -1 && PyErr_Occurred()) {
        return -1;
    }
    c->n = PyUnicode_GET_LENGTH(args[0]);
    if (c->a < 0 || c->b > c->n || c->a > c->b) {
        PyErr_Format(PyExc_ValueError, "%s: span out of range", name);
        return -1;
    }
    c->kind = PyUnicode_KIND(args[0]);
    c->data = PyUnicode_DATA(args[0]);
    return 0;
}

static PyObject *
span_result(Py_ssize_t a, Py_ssize_t b)
{
    return Py_BuildValue("(nn)", a, b);
}

/* Luhn over the decimal values of digits[0..n), rightmost first doubled every second. */
static int
luhn_values(const int *digits, Py_ssize_t n)
{
    int total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int d = digits[n - 1 - i];
        if (i & 1) {
            d *= 2;
            if (d > 9) {
                d -= 9;
            }
        }
        total += d;
    }
    return total % 10 == 0;
}

/* chk_card(text, a, b): 13-19 digits passing Luhn; separated numbers in groups of 4-6
 * with one kind of separator, trailing groups dropped until the rest validates. */
static PyObject *
chk_card(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    CheckArgs ca;
    if (parse_check_args(args, nargs, "chk_card", &ca) < 0) {
        return NULL;
    }
    Py_ssize_t a = ca.a, b = ca.b;
    int kind = ca.kind;
    const void *data = ca.data;
    int digits[64];
    Py_ssize_t group_len[64];
    Py_ssize_t ndigits = 0, ngroups = 1, spaces = 0, dashes = 0;
    group_len[0] = 0;
    if (b - a > 64) {
        Py_RETURN_NONE; /* the scanner's candidates are at most 1 + 2 * 17 characters */
    }
    for (Py_ssize_t i = a; i < b; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == ' ' || c == '-') {
            spaces += c == ' ';
            dashes += c == '-';
            continue;
        }
        int d = Py_UNICODE_TODECIMAL(c);
        if (d < 0) {
            Py_RETURN_NONE; /* not a candidate the scanner gives */
        }
        digits[ndigits++] = d;
    }
    if (spaces == 0 && dashes == 0) {
        if (ndigits >= 13 && ndigits <= 19 && luhn_values(digits, ndigits)) {
            return span_result(a, b);
        }
        Py_RETURN_NONE;
    }
    if (dashes && spaces) {
        Py_RETURN_NONE;
    }
    Py_UCS4 sep = dashes ? '-' : ' ';
    for (Py_ssize_t i = a; i < b; i++) {
        if (PyUnicode_READ(kind, data, i) == sep) {
            group_len[ngroups++] = 0;
        }
        else {
            group_len[ngroups - 1]++;
        }
    }
    Py_ssize_t total = ndigits;
    while (ngroups >= 2) {
        int inner_ok = 1;
        for (Py_ssize_t g = 0; g < ngroups - 1; g++) {
            if (group_len[g] < 4 || group_len[g] > 6) {
                inner_ok = 0;
                break;
            }
        }
        if (total >= 13 && total <= 19 && inner_ok && luhn_values(digits, total)) {
            return span_result(a, a + total + ngroups - 1);
        }
        total -= group_len[--ngroups];
    }
    Py_RETURN_NONE;
}

static int
is_hex(Py_UCS4 c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
is_word(Py_UCS4 c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Split s[0..n) on ':' into groups (start, length); the number of groups, or -1 if more
 * than max. */
static int
split_colons(const char *s, Py_ssize_t n, Py_ssize_t *start, Py_ssize_t *len, int max)
{
    int count = 0;
    Py_ssize_t from = 0;
    for (Py_ssize_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ':') {
            if (count == max) {
                return -1;
            }
            start[count] = from;
            len[count] = i - from;
            count++;
            from = i + 1;
        }
    }
    return count;
}

/* redact.checks._ipv6_groups(cand) is not None, for an ASCII candidate. */
static int
ipv6_groups_ok(const char *cand, Py_ssize_t n)
{
    char buf[128];
    if (n < 0 || n > 120) {
        return 0;
    }
    memcpy(buf, cand, (size_t)n);
    if (memchr(buf, '.', (size_t)n) != NULL) {
        /* An IPv4 tail: four decimal octets after the last ':', counted as two groups. */
        Py_ssize_t i = n - 1;
        while (i >= 0 && buf[i] != ':') {
            i--;
        }
        Py_ssize_t from = i + 1, parts = 0;
        for (Py_ssize_t j = from; j <= n; j++) {
            if (j == n || buf[j] == '.') {
                Py_ssize_t len = j - from;
                if (len < 1 || len > 3) {
                    return 0;
                }
                int value = 0;
                for (Py_ssize_t k = from; k < j; k++) {
                    if (!is_digit(buf[k])) {
                        return 0;
                    }
                    value = value * 10 + (buf[k] - '0');
                }
                if (value > 255 || ++parts > 4) {
                    return 0;
                }
                from = j + 1;
            }
        }
        if (parts != 4) {
            return 0;
        }
        memcpy(buf + i + 1, "0:0", 3);
        n = i + 4;
    }
    /* str.count("::"): non-overlapping occurrences. */
    Py_ssize_t dbl = -1;
    int doubles = 0;
    for (Py_ssize_t i = 0; i + 1 < n; i++) {
        if (buf[i] == ':' && buf[i + 1] == ':') {
            if (doubles++ == 0) {
                dbl = i;
            }
            i++;
        }
    }
    if (doubles > 1) {
        return 0;
    }
    Py_ssize_t start[16], len[16];
    int ngroups;
    if (doubles) {
        int nh = dbl > 0 ? split_colons(buf, dbl, start, len, 16) : 0;
        if (nh < 0) {
            return 0;
        }
        int nt = 0;
        if (dbl + 2 < n) {
            nt = split_colons(buf + dbl + 2, n - dbl - 2, start + nh, len + nh, 16 - nh);
            if (nt < 0) {
                return 0;
            }
        }
        ngroups = nh + nt;
        if (ngroups > 7) {
            return 0;
        }
    }
    else {
        ngroups = split_colons(buf, n, start, len, 16);
        if (ngroups != 8) {
            return 0;
        }
    }
    for (int g = 0; g < ngroups; g++) {
        if (len[g] < 1 || len[g] > 4) {
            return 0;
        }
    }
    return 1;
}

/* chk_ipv6(text, a, b): the match starts at the first ':'; re-attach the hex group
 * before it, then check the address's structure. */
static PyObject *
chk_ipv6(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    CheckArgs ca;
    if (parse_check_args(args, nargs, "chk_ipv6", &ca) < 0) {
        return NULL;
    }
    Py_ssize_t a = ca.a, b = ca.b, n = ca.n;
    int kind = ca.kind;
    const void *data = ca.data;
    Py_ssize_t lo = a >= 5 ? a - 5 : 0, j = a;
    while (j > lo && is_hex(PyUnicode_READ(kind, data, j - 1))) {
        j--;
    }
    lo = j;
    if (a - lo > 4) {
        Py_RETURN_NONE;
    }
    if (lo > 0 && is_word(PyUnicode_READ(kind, data, lo - 1))) {
        /* ... unless it follows a JSON-style escape such as a literal "\n". */
        Py_UCS4 prev = PyUnicode_READ(kind, data, lo - 1);
        int escaped = lo > 1 && (prev == 'n' || prev == 'r' || prev == 't') &&
                      PyUnicode_READ(kind, data, lo - 2) == '\\';
        if (!escaped) {
            Py_RETURN_NONE;
        }
    }
    while (b > a && PyUnicode_READ(kind, data, b - 1) == '.') {
        b--;
    }
    if (b < n && is_word(PyUnicode_READ(kind, data, b))) {
        Py_RETURN_NONE;
    }
    char cand[128];
    Py_ssize_t m = b - lo;
    if (m < 0 || m > 120) {
        Py_RETURN_NONE; /* the scanner's candidates are at most 4 + 46 characters */
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, lo + i);
        if (c != ':' && c != '.' && !is_hex(c)) {
            Py_RETURN_NONE; /* not a candidate the scanner gives */
        }
        cand[i] = (char)c;
    }
    if (!ipv6_groups_ok(cand, m)) {
        Py_RETURN_NONE;
    }
    int compressed = 0;
    for (Py_ssize_t i = 0; i + 1 < m; i++) {
        if (cand[i] == ':' && cand[i + 1] == ':') {
            compressed = 1;
            break;
        }
    }
    if (compressed) {
        /* Compressed forms must carry some substance (at least two groups, one of them
         * 3+ characters or not all digits), so that slices such as "a[1::2]" or Rust/C++
         * paths are not taken for addresses. */
        int groups = 0, substance = 0;
        Py_ssize_t from = 0;
        for (Py_ssize_t i = 0; i <= m; i++) {
            if (i == m || cand[i] == ':' || cand[i] == '.') {
                Py_ssize_t len = i - from;
                if (len > 0) {
                    groups++;
                    int all_digits = 1;
                    for (Py_ssize_t k = from; k < i; k++) {
                        all_digits &= is_digit(cand[k]);
                    }
                    substance |= len >= 3 || !all_digits;
                }
                from = i + 1;
            }
        }
        if (groups < 2 || !substance) {
            Py_RETURN_NONE;
        }
    }
    return span_result(lo, b);
}

/* ---------------------------------------------------------------- the match loop */

static PyObject *str_span, *str_lastindex, *str_empty, *one_obj;

/* The ASCII characters of an e-mail local part (flightrec.redact.patterns._LOCAL_CHARS). */
static int
is_local_char(Py_UCS4 c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '%' || c == '+' || c == '-';
}

/* redact.patterns._wide: a script written without blanks between words (CJK, kana, hangul). */
static int
is_wide(Py_UCS4 c)
{
    return (c >= 0x2E80 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x3FFFF);
}

/* redact.patterns._local_start: where the local part of the address whose '@' is at ``at``
 * starts, not before ``lo`` (ASCII local characters, letters and digits of any script and
 * combining accents; where
 * a script written without blanks and another meet, the address begins). */
static Py_ssize_t
local_start(int kind, const void *data, Py_ssize_t at, Py_ssize_t lo)
{
    Py_ssize_t i = at;
    int wide = -1; /* unknown until the first letter or digit */
    while (i > lo) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i - 1);
        if (c >= 0x300 && c < 0x370) {
            /* a combining accent (patterns._COMBINING): of no script of its own */
        }
        else if (is_local_char(c)) {
            if (c != '.' && c != '_' && c != '%' && c != '+' && c != '-') {
                if (wide == 1) {
                    break;
                }
                wide = 0;
            }
        }
        else if (c > 0x7f && Py_UNICODE_ISALNUM(c)) {
            int w = is_wide(c);
            if (wide >= 0 && w != wide) {
                break;
            }
            wide = w;
        }
        else {
            break;
        }
        i--;
    }
    return i;
}

/* Read a (start, end) pair of Python ints; -1 on error. */
static int
read_span(PyObject *span, Py_ssize_t *a, Py_ssize_t *b)
{
    if (!PyTuple_Check(span) || PyTuple_GET_SIZE(span) != 2) {
        PyErr_SetString(PyExc_TypeError, "a span must be a (start, end) tuple");
        return -1;
    }
    *a = PyLong_AsSsize_t(PyTuple_GET_ITEM(span, 0));
    if (*a == -1 && PyErr_Occurred()) {
        return -1;
    }
    *b = PyLong_AsSsize_t(PyTuple_GET_ITEM(span, 1));
    if (*b == -1 && PyErr_Occurred()) {
        return -1;
    }
    return 0;
}

/* Append text[a:b] to parts (nothing when empty); -1 on error. */
static int
append_slice(PyObject *parts, PyObject *text, Py_ssize_t a, Py_ssize_t b)
{
    if (b <= a) {
        return 0;
    }
    PyObject *s = PyUnicode_Substring(text, a, b);
    if (s == NULL) {
        return -1;
    }
    int rc = PyList_Append(parts, s);
    Py_DECREF(s);
    return rc;
}

/*
 * scan(text, first, search, handlers, pseudonym, hits) -> str | None
 *
 * The loop of Redactor._scan from its first match on: ``first`` is search(text)'s match,
 * ``search`` the scanner's bound search method, ``handlers`` the list of per-group
 * (KIND, rule, inner, back, check) tuples and ``pseudonym(value)`` gives a value's hash
 * (called in C when it is a Keyed). The name of every rule that replaced a value is
 * appended to ``hits``. Returns the redacted text, or None when nothing was replaced.
 */
static PyObject *
scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "scan(text, first, search, handlers, pseudonym, hits)");
        return NULL;
    }
    PyObject *text = args[0], *m = args[1], *search = args[2], *handlers = args[3];
    PyObject *pseudonym = args[4], *hits = args[5];
    if (!PyUnicode_Check(text) || !PyList_Check(handlers) || !PyList_Check(hits)) {
        PyErr_SetString(PyExc_TypeError, "scan: text str, handlers list, hits list");
        return NULL;
    }
    Keyed *keyed = Py_IS_TYPE(pseudonym, &KeyedType) ? (Keyed *)pseudonym : NULL;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *parts = PyList_New(0);
    if (parts == NULL) {
        return NULL;
    }
    Py_INCREF(m);
    Py_ssize_t last = 0;
    while (m != Py_None) {
        PyObject *li = PyObject_GetAttr(m, str_lastindex);
        if (li == NULL) {
            goto error;
        }
        Py_ssize_t group = PyLong_AsSsize_t(li);
        Py_DECREF(li);
        if (group == -1 && PyErr_Occurred()) {
            goto error;
        }
        if (group < 0 || group >= PyList_GET_SIZE(handlers)) {
            PyErr_SetString(PyExc_IndexError, "scan: no handler for the match's group");
            goto error;
        }
        PyObject *h = PyList_GET_ITEM(handlers, group); /* borrowed */
        if (!PyTuple_Check(h) || PyTuple_GET_SIZE(h) != 5) {
            PyErr_SetString(PyExc_TypeError, "scan: a handler is a 5-tuple");
            goto error;
        }
        PyObject *kind_label = PyTuple_GET_ITEM(h, 0), *rule = PyTuple_GET_ITEM(h, 1);
        PyObject *inner = PyTuple_GET_ITEM(h, 2), *check = PyTuple_GET_ITEM(h, 4);
        Py_ssize_t back = PyLong_AsSsize_t(PyTuple_GET_ITEM(h, 3));
        if (back == -1 && PyErr_Occurred()) {
            goto error;
        }
        Py_ssize_t a, b;
        PyObject *span = PyObject_CallMethodNoArgs(m, str_span);
        if (span == NULL || read_span(span, &a, &b) < 0) {
            Py_XDECREF(span);
            goto error;
        }
        Py_DECREF(span);
        /* After a rejected candidate, rescan from just after its start: a greedy
         * candidate can contain a valid one. */
        Py_ssize_t nxt = a + 1;
        int is_inner = PyObject_IsTrue(inner);
        if (is_inner < 0) {
            goto error;
        }
        if (is_inner) {
            span = PyObject_CallMethodOneArg(m, str_span, inner);
            if (span == NULL || read_span(span, &a, &b) < 0) {
                Py_XDECREF(span);
                goto error;
            }
            Py_DECREF(span);
        }
        else if (back < 0) {
            /* E-mail: the local part precedes the '@' trigger (at most 64 characters,
             * not before the end of the last replacement, without the letter of an
             * escaped line break before it ("\\njane@...") nor leading dots). */
            Py_ssize_t i = local_start(kind, data, a, a - 64 > last ? a - 64 : last);
            if (i < a && i > 0 && PyUnicode_READ(kind, data, i - 1) == '\\') {
                Py_UCS4 e = PyUnicode_READ(kind, data, i);
                if (e == 'n' || e == 'r' || e == 't') {
                    i++;
                }
            }
            while (i < a && PyUnicode_READ(kind, data, i) == '.') {
                i++;
            }
            a = i < a ? i : -1;
        }
        else {
            a -= back;
        }
        if (a >= last) {
            int accepted = 1;
            if (check != Py_None) {
                PyObject *pa = PyLong_FromSsize_t(a), *pb = PyLong_FromSsize_t(b);
                PyObject *res = NULL;
                if (pa != NULL && pb != NULL) {
                    PyObject *cargs[3] = {text, pa, pb};
                    res = PyObject_Vectorcall(check, cargs, 3, NULL);
                }
                Py_XDECREF(pa);
                Py_XDECREF(pb);
                if (res == NULL) {
                    goto error;
                }
                if (res == Py_None) {
                    accepted = 0;
                }
                else if (read_span(res, &a, &b) < 0) {
                    Py_DECREF(res);
                    goto error;
                }
                Py_DECREF(res);
            }
            if (accepted) {
                PyObject *value = PyUnicode_Substring(text, a, b);
                if (value == NULL) {
                    goto error;
                }
                PyObject *pseudo =
                    keyed != NULL ? keyed_str(keyed, value) : PyObject_CallOneArg(pseudonym, value);
                Py_DECREF(value);
                if (pseudo == NULL) {
                    goto error;
                }
                PyObject *label = PyUnicode_FromFormat("<%U:%U>", kind_label, pseudo);
                Py_DECREF(pseudo);
                if (label == NULL) {
                    goto error;
                }
                int rc = append_slice(parts, text, last, a);
                if (rc == 0) {
                    rc = PyList_Append(parts, label);
                }
                Py_DECREF(label);
                if (rc < 0 || PyList_Append(hits, rule) < 0) {
                    goto error;
                }
                /* Continue after the replacement (a validator may have trimmed the
                 * match; the rest is rescanned). */
                last = nxt = b;
            }
        }
        PyObject *pos = PyLong_FromSsize_t(nxt);
        if (pos == NULL) {
            goto error;
        }
        PyObject *sargs[2] = {text, pos};
        PyObject *next = PyObject_Vectorcall(search, sargs, 2, NULL);
        Py_DECREF(pos);
        if (next == NULL) {
            goto error;
        }
        Py_SETREF(m, next);
    }
    Py_DECREF(m);
    if (PyList_GET_SIZE(parts) == 0) {
        Py_DECREF(parts);
        Py_RETURN_NONE;
    }
    if (append_slice(parts, text, last, PyUnicode_GET_LENGTH(text)) < 0) {
        Py_DECREF(parts);
        return NULL;
    }
    PyObject *out = PyUnicode_Join(str_empty, parts);
    Py_DECREF(parts);
    return out;

error:
    Py_DECREF(m);
    Py_DECREF(parts);
    return NULL;
}

/* ---------------------------------------------------------------- the dict walk */

/*
 * DictWalk(...)(redactor, d, path, depth, active): Redactor._dict for the common case (not
 * raw, no snapshot, no path-dependent rules or callback), in C. It holds the Redactor's
 * unbound helper functions, not the Redactor, and reads the caches and limits from the
 * Redactor it is given at each call, so one DictWalk serves every Redactor (and its
 * unbounded twin). Everything that is not a str key of a known class with a str, int,
 * float, bool, None or dict value goes to the same Python helpers the Python loop calls.
 */
typedef struct {
    PyObject_HEAD
    PyObject *key_slow, *secret, *walk, *text_miss, *string, *replay, *big_int, *unstable;
    PyObject *max_depth_marker, *cycle_marker, *trunc_key;
    vectorcallfunc vectorcall;
} DictWalk;

static PyObject *DictWalk_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames);

static PyObject *str_walk_settings, *str_key_cache, *str_cache, *str_max_str, *str_max_depth, *str_max_items, *str_degraded,
    *str_prefilter, *str_cache_gen_max, *str_cache_chars, *str_extra_words;

static void
DictWalk_dealloc(DictWalk *self)
{
    Py_XDECREF(self->key_slow);
    Py_XDECREF(self->secret);
    Py_XDECREF(self->walk);
    Py_XDECREF(self->text_miss);
    Py_XDECREF(self->string);
    Py_XDECREF(self->replay);
    Py_XDECREF(self->big_int);
    Py_XDECREF(self->unstable);
    Py_XDECREF(self->max_depth_marker);
    Py_XDECREF(self->cycle_marker);
    Py_XDECREF(self->trunc_key);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
DictWalk_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"key_slow", "secret", "walk", "text_miss", "string", "replay", "big_int",
                             "unstable", "max_depth_marker", "cycle_marker", "trunc_key", NULL};
    PyObject *f[11];
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOOOOOO:DictWalk", kwlist, &f[0], &f[1], &f[2],
                                     &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10])) {
        return NULL;
    }
    DictWalk *self = (DictWalk *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = DictWalk_vectorcall;
    PyObject **slots[11] = {&self->key_slow, &self->secret, &self->walk, &self->text_miss,
                            &self->string, &self->replay, &self->big_int, &self->unstable,
                            &self->max_depth_marker, &self->cycle_marker, &self->trunc_key};
    for (int i = 0; i < 11; i++) {
        *slots[i] = Py_NewRef(f[i]);
    }
    return (PyObject *)self;
}

/* An int attribute of the redactor; -1 with an exception on error. */
static Py_ssize_t
ssize_attr(PyObject *obj, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) {
        return -1;
    }
    Py_ssize_t n = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return n;
}

/* redactor._degraded += 1 */
static int
add_degraded(PyObject *red)
{
    PyObject *v = PyObject_GetAttr(red, str_degraded);
    if (v == NULL) {
        return -1;
    }
    PyObject *w = PyNumber_Add(v, one_obj);
    Py_DECREF(v);
    if (w == NULL) {
        return -1;
    }
    int rc = PyObject_SetAttr(red, str_degraded, w);
    Py_DECREF(w);
    return rc;
}

/* Whether an exact int fits MessagePack's range (-2**63 .. 2**64-1); -1 on error. */
static int
int_fits(PyObject *v)
{
    int overflow;
    PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow == 0) {
        return PyErr_Occurred() ? -1 : 1;
    }
    if (overflow < 0) {
        return 0;
    }
    PyLong_AsUnsignedLongLong(v);
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return -1;
        }
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* What a walk reads of the redactor once, when it starts, rather than at every dict and
 * string: settings fixed at construction, and the key cache (_key_slow may swap in a new one
 * meanwhile; this one still classifies keys correctly, and the walk holds a reference). */
typedef struct {
    Py_ssize_t max_depth, max_items, max_str, gen_max;
    int prefilter; /* the redactor's _prefilter is True */
    PyObject *key_cache;
    PyObject *words; /* the redactor's _extra_words: a tuple of ASCII str (see words_ok), or NULL */
} WalkCfg;

static PyObject *walk_dict(DictWalk *w, WalkCfg *cfg, PyObject *red, PyObject *d, PyObject *path,
                           Py_ssize_t depth, PyObject *active);
static int rule_may(PyObject *text, PyObject *words);
static int words_ok(PyObject *words);

/* redact.redactor._CACHE_MAX_ENTRY, _CACHE_MAX_CHARS and redact.patterns._ID_MAX_LEN (tests check that they agree). */
#define CACHE_MAX_ENTRY 65536
#define CACHE_MAX_CHARS 4000000
#define ID_MAX_LEN 64

static Py_ssize_t
attr_ssize(PyObject *obj, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) {
        return -1;
    }
    Py_ssize_t n = PyLong_Check(v) ? PyLong_AsSsize_t(v) : -1;
    Py_DECREF(v);
    return n;
}

/* 1 when no rule of ``red`` can match in ``text`` (its _prefilter allows the test, and both
 * prefilters say no): the text is its own redacted form, as Redactor._scan would find after
 * the same two tests, so it needs no Python call. It is cached as Redactor._text_miss would
 * cache it (a repeated text then costs one lookup), unless that needs the generations
 * swapped: 0 then, as when a rule may match or the redactor has no such flag; the Python
 * path does the rest. */
static int
clean_text(PyObject *red, const WalkCfg *cfg, PyObject *walk_cache, PyObject *text)
{
    if (!cfg->prefilter || rule_may(text, cfg->words)) {
        return 0;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_ssize_t gen_max = cfg->gen_max;
    Py_ssize_t chars = gen_max > 0 && n <= CACHE_MAX_ENTRY ? attr_ssize(red, str_cache_chars) : 0;
    if (gen_max < 0 || chars < 0) {
        PyErr_Clear();
        return 0;
    }
    if (gen_max == 0 || n > CACHE_MAX_ENTRY) {
        return 1; /* not cached by _text_miss either */
    }
    if (n <= ID_MAX_LEN && n > 0 && is_hex(PyUnicode_READ_CHAR(text, 0)) /* redact.patterns._ID_FIRST */) {
        /* Maybe an id or a timestamp, which _text_miss leaves uncached (unique: it would only
         * crowd the cache). Short: the tests above cost less than a lookup would save. */
        return 1;
    }
    PyObject *cache = PyObject_GetAttr(red, str_cache); /* (a text_miss since the walk began may have swapped it) */
    if (cache == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(cache); /* the redactor holds it */
    if (cache != walk_cache || !PyDict_CheckExact(cache) || PyDict_GET_SIZE(cache) >= gen_max ||
        chars + n > CACHE_MAX_CHARS) {
        return 0;
    }
    PyObject *total = PyLong_FromSsize_t(chars + n);
    if (total == NULL || PyDict_SetItem(cache, text, text) < 0 || PyObject_SetAttr(red, str_cache_chars, total) < 0) {
        Py_XDECREF(total);
        PyErr_Clear();
        PyDict_DelItem(cache, text); /* (absent is fine) */
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(total);
    return 1;
}

/* The redacted form of one value (not under a secret or allow-listed key). */
static PyObject *
walk_value(DictWalk *w, WalkCfg *cfg, PyObject *red, PyObject *v, PyObject *path, Py_ssize_t sub,
           PyObject *active, PyObject *cache)
{
    Py_ssize_t max_str = cfg->max_str;
    if (PyUnicode_CheckExact(v)) {
        /* A text longer than the cache keeps is never in it: not looked up, which would hash
         * it whole (a 10 MB tool result cost milliseconds in siphash, for a value cut to
         * max_str anyway). */
        PyObject *e = PyUnicode_GET_LENGTH(v) <= CACHE_MAX_ENTRY ? PyDict_GetItemWithError(cache, v) : NULL;
        if (e == NULL) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            if (PyUnicode_GET_LENGTH(v) <= max_str) {
                if (clean_text(red, cfg, cache, v)) {
                    return Py_NewRef(v);
                }
                PyObject *a[2] = {red, v};
                return PyObject_Vectorcall(w->text_miss, a, 2, NULL);
            }
            PyObject *a[4] = {red, v, path, Py_False};
            return PyObject_Vectorcall(w->string, a, 4, NULL);
        }
        if (PyUnicode_CheckExact(e)) {
            return Py_NewRef(e);
        }
        Py_INCREF(e); /* the cache may be swapped out while _replay runs */
        PyObject *a[2] = {red, e};
        PyObject *out = PyObject_Vectorcall(w->replay, a, 2, NULL);
        Py_DECREF(e);
        return out;
    }
    if (PyLong_CheckExact(v)) {
        int fits = int_fits(v);
        if (fits < 0) {
            return NULL;
        }
        if (fits) {
            return Py_NewRef(v);
        }
        PyObject *a[2] = {red, v};
        return PyObject_Vectorcall(w->big_int, a, 2, NULL);
    }
    if (PyFloat_CheckExact(v) || PyBool_Check(v) || v == Py_None) {
        return Py_NewRef(v);
    }
    if (PyDict_CheckExact(v)) {
        return walk_dict(w, cfg, red, v, path, sub, active);
    }
    PyObject *depth = PyLong_FromSsize_t(sub);
    if (depth == NULL) {
        return NULL;
    }
    PyObject *a[6] = {red, v, path, depth, active, Py_False};
    PyObject *out = PyObject_Vectorcall(w->walk, a, 6, NULL);
    Py_DECREF(depth);
    return out;
}

/* The loop of Redactor._dict; 1 when d changed size under it (the caller retries). */
static int
walk_items(DictWalk *w, WalkCfg *cfg, PyObject *red, PyObject *d, PyObject *path, Py_ssize_t sub,
           PyObject *active, PyObject *out)
{
    PyObject *key_cache = cfg->key_cache, *cache = PyObject_GetAttr(red, str_cache);
    Py_ssize_t max_items = cfg->max_items;
    int rc = -1;
    if (cache == NULL || !PyDict_Check(cache)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "DictWalk: unexpected Redactor state");
        }
        goto done;
    }
    Py_ssize_t size = PyDict_GET_SIZE(d), pos = 0, seen = 0;
    PyObject *k, *v;
    while (seen < max_items && PyDict_Next(d, &pos, &k, &v)) {
        seen++;
        Py_INCREF(k);
        Py_INCREF(v);
        PyObject *kc = NULL, *key = NULL, *value = NULL; /* new references */
        if (PyUnicode_CheckExact(k)) {
            kc = PyDict_GetItemWithError(key_cache, k);
            if (kc != NULL) {
                Py_INCREF(kc);
                key = Py_NewRef(k);
            }
        }
        if (kc == NULL && !PyErr_Occurred()) {
            PyObject *a[2] = {red, k};
            PyObject *pair = PyObject_Vectorcall(w->key_slow, a, 2, NULL);
            if (pair != NULL && PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2) {
                key = Py_NewRef(PyTuple_GET_ITEM(pair, 0));
                kc = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
            }
            else if (pair != NULL) {
                PyErr_SetString(PyExc_TypeError, "DictWalk: _key_slow must return (key, class)");
            }
            Py_XDECREF(pair);
        }
        if (kc != NULL) {
            long cls = PyLong_AsLong(kc);
            if (cls == 0) { /* _KEY_NORMAL */
                value = walk_value(w, cfg, red, v, path, sub, active, cache);
            }
            else if (cls == 1) { /* _KEY_SECRET */
                PyObject *a[2] = {red, v};
                value = PyObject_Vectorcall(w->secret, a, 2, NULL);
            }
            else if (!(cls == -1 && PyErr_Occurred())) { /* allow-listed: sanitize only */
                PyObject *depth = PyLong_FromSsize_t(sub);
                if (depth != NULL) {
                    PyObject *a[6] = {red, v, path, depth, active, Py_True};
                    value = PyObject_Vectorcall(w->walk, a, 6, NULL);
                    Py_DECREF(depth);
                }
            }
        }
        int set = value != NULL ? PyDict_SetItem(out, key, value) : -1;
        Py_XDECREF(value);
        Py_XDECREF(kc);
        Py_XDECREF(key);
        Py_DECREF(k);
        Py_DECREF(v);
        if (set < 0) {
            goto done;
        }
        if (PyDict_GET_SIZE(d) != size) {
            rc = 1; /* another thread changed d: the caller retries on a snapshot */
            goto done;
        }
    }
    rc = 0;
done:
    Py_XDECREF(cache);
    return rc;
}

/* Redactor._dict (not raw): see DictWalk. */
static PyObject *
walk_dict(DictWalk *w, WalkCfg *cfg, PyObject *red, PyObject *d, PyObject *path, Py_ssize_t depth,
          PyObject *active)
{
    if (depth > cfg->max_depth) {
        return add_degraded(red) < 0 ? NULL : Py_NewRef(w->max_depth_marker);
    }
    PyObject *oid = PyLong_FromVoidPtr(d);
    if (oid == NULL) {
        return NULL;
    }
    int seen = PySet_Contains(active, oid);
    if (seen != 0) {
        Py_DECREF(oid);
        if (seen < 0) {
            return NULL;
        }
        return add_degraded(red) < 0 ? NULL : Py_NewRef(w->cycle_marker);
    }
    if (PySet_Add(active, oid) < 0) {
        Py_DECREF(oid);
        return NULL;
    }
    PyObject *out = NULL;
    int rc = -1;
    Py_ssize_t total = PyDict_GET_SIZE(d);
    out = PyDict_New();
    if (out != NULL) {
        if (Py_EnterRecursiveCall(" in the redaction walk") == 0) {
            rc = walk_items(w, cfg, red, d, path, depth + 1, active, out);
            Py_LeaveRecursiveCall();
        }
    }
    if (rc == 0 && total > cfg->max_items) {
        PyObject *note = PyUnicode_FromFormat("<truncated %zd items>", total - cfg->max_items);
        if (note == NULL || add_degraded(red) < 0 || PyDict_SetItem(out, w->trunc_key, note) < 0) {
            rc = -1;
        }
        Py_XDECREF(note);
    }
    if (rc != 0) {
        Py_CLEAR(out);
    }
    if (PySet_Discard(active, oid) < 0) {
        Py_XDECREF(out);
        Py_DECREF(oid);
        return NULL;
    }
    Py_DECREF(oid);
    if (rc == 0) {
        return out;
    }
    if (rc < 0 && PyErr_ExceptionMatches(PyExc_RecursionError)) {
        PyErr_Clear();
        return add_degraded(red) < 0 ? NULL : Py_NewRef(w->max_depth_marker);
    }
    if (rc == 1 || PyErr_ExceptionMatches(PyExc_RuntimeError)) {
        /* d (or something below it) changed under the walk: retry on a snapshot, in Python. */
        PyErr_Clear();
        PyObject *pdepth = PyLong_FromSsize_t(depth);
        if (pdepth == NULL) {
            return NULL;
        }
        PyObject *a[5] = {red, d, path, pdepth, active};
        PyObject *res = PyObject_Vectorcall(w->unstable, a, 5, NULL);
        Py_DECREF(pdepth);
        return res;
    }
    return NULL;
}

/* Fill cfg from the redactor (a new reference to its key cache); 0, or -1 with an error set. */
static int
read_cfg(PyObject *red, WalkCfg *cfg)
{
    /* Redactor._walk_settings: (max_depth, max_items, max_str, prefilter, cache_gen_max,
     * extra_words), one lookup; a redactor without it (or odd values) is read attribute by
     * attribute. */
    cfg->words = NULL;
    PyObject *t = PyObject_GetAttr(red, str_walk_settings);
    if (t != NULL && PyTuple_CheckExact(t) && PyTuple_GET_SIZE(t) == 6 && PyLong_CheckExact(PyTuple_GET_ITEM(t, 4))) {
        cfg->max_depth = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0));
        cfg->max_items = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1));
        cfg->max_str = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 2));
        cfg->prefilter = PyTuple_GET_ITEM(t, 3) == Py_True;
        cfg->gen_max = cfg->prefilter ? PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 4)) : 0;
        cfg->words = Py_NewRef(PyTuple_GET_ITEM(t, 5)); /* (held: the tuple is let go here) */
        Py_DECREF(t);
        if (cfg->max_depth >= 0 && cfg->max_items >= 0 && cfg->max_str >= 0 && !PyErr_Occurred()) {
            if (cfg->gen_max < 0 || !words_ok(cfg->words)) {
                cfg->prefilter = 0; /* (words the prefilter cannot read: the Python path) */
            }
            cfg->key_cache = PyObject_GetAttr(red, str_key_cache);
            if (cfg->key_cache != NULL && PyDict_Check(cfg->key_cache)) {
                return 0;
            }
            Py_CLEAR(cfg->key_cache);
        }
        Py_CLEAR(cfg->words);
    }
    else {
        Py_XDECREF(t);
    }
    PyErr_Clear();
    if ((cfg->max_depth = ssize_attr(red, str_max_depth)) == -1 && PyErr_Occurred()) {
        return -1;
    }
    cfg->max_items = ssize_attr(red, str_max_items);
    cfg->max_str = cfg->max_items < 0 ? -1 : ssize_attr(red, str_max_str);
    if (cfg->max_items < 0 || cfg->max_str < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "DictWalk: unexpected Redactor state");
        }
        return -1;
    }
    /* No _prefilter flag or cache settings: every string goes to the Python path; nor when the
     * user's extra key names cannot be read (the prefilter would not know them). */
    PyObject *on = PyObject_GetAttr(red, str_prefilter);
    cfg->prefilter = on == Py_True;
    Py_XDECREF(on);
    if (cfg->prefilter) {
        cfg->words = PyObject_GetAttr(red, str_extra_words);
        if (cfg->words == NULL || !words_ok(cfg->words)) {
            cfg->prefilter = 0;
            Py_CLEAR(cfg->words);
        }
    }
    cfg->gen_max = cfg->prefilter ? attr_ssize(red, str_cache_gen_max) : 0;
    if (cfg->gen_max < 0) {
        cfg->prefilter = 0;
    }
    PyErr_Clear();
    cfg->key_cache = PyObject_GetAttr(red, str_key_cache);
    if (cfg->key_cache == NULL || !PyDict_Check(cfg->key_cache)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "DictWalk: unexpected Redactor state");
        }
        Py_XDECREF(cfg->key_cache);
        Py_CLEAR(cfg->words);
        return -1;
    }
    return 0;
}

/* DictWalk(redactor, d, path, depth, active), by the vectorcall protocol (no argument tuple
 * to build and parse: it runs for every event). */
static PyObject *
DictWalk_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 5 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0) ||
        !PyDict_Check(args[1]) || !PyUnicode_Check(args[2]) || !PyLong_Check(args[3]) ||
        !PySet_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "DictWalk(redactor, d: dict, path: str, depth: int, active: set)");
        return NULL;
    }
    Py_ssize_t depth = PyLong_AsSsize_t(args[3]);
    if (depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *red = args[0];
    WalkCfg cfg;
    if (read_cfg(red, &cfg) < 0) {
        return NULL;
    }
    PyObject *out = walk_dict((DictWalk *)self, &cfg, red, args[1], args[2], depth, args[4]);
    Py_DECREF(cfg.key_cache);
    Py_XDECREF(cfg.words);
    return out;
}

/* ---------------------------------------------------------------- redact and encode at once */

/*
 * DictWalk.encode(redactor, d) -> bytes | None: the MessagePack encoding of what
 * DictWalk(redactor, d, "", 0, set()) returns, written during one walk of ``d`` (no
 * redacted copy to build, no second pass by an encoder), for the plain case only: str keys
 * of the normal class (no secret or allow-listed key), values that are dicts of the same,
 * ints in MessagePack's range, floats, bools, None, and strs no rule can change (a str
 * entry of the redactor's cache, or one that both prefilters clear, cached as the walk
 * caches it), within the redactor's limits. None for anything else, before anything was
 * counted: no rule has matched (that would count a hit), nothing was cut or replaced, so the
 * caller redacts the usual way and gets the same result. The bytes are exactly what
 * msgspec's encoder writes for the redacted dict (the tests compare them).
 */
typedef struct {
    char *p;
    Py_ssize_t len, cap;
    int heap;
    char small[1024];
} MBuf;

static int
mb_grow(MBuf *b, Py_ssize_t n)
{
    Py_ssize_t cap = b->cap * 2;
    while (cap < b->len + n) {
        cap *= 2;
    }
    char *q = b->heap ? PyMem_Realloc(b->p, (size_t)cap) : PyMem_Malloc((size_t)cap);
    if (q == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (!b->heap) {
        memcpy(q, b->p, (size_t)b->len);
    }
    b->p = q;
    b->cap = cap;
    b->heap = 1;
    return 0;
}

#define MB_NEED(b, n) (((b)->len + (n) <= (b)->cap) ? 0 : mb_grow((b), (n)))

/* Where the next bytes go (room made by MB_NEED). */
#define MB_AT(b) ((unsigned char *)(b)->p + (b)->len)

/* A str; 0, or -1 with an error set (a str with lone surrogates has no UTF-8 form). */
static int
mb_str(MBuf *b, PyObject *s)
{
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u == NULL || MB_NEED(b, 5 + n) < 0) {
        return -1;
    }
    b->len += (Py_ssize_t)MP_STR_HEAD(MB_AT(b), (uint64_t)n);
    memcpy(b->p + b->len, u, (size_t)n);
    b->len += n;
    return 0;
}

/* An int that fits -2**63 .. 2**64-1. */
static int
mb_int(MBuf *b, PyObject *v)
{
    if (MB_NEED(b, 9) < 0) {
        return -1;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(v);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            return -1;
        }
        b->len += (Py_ssize_t)mp_uint(MB_AT(b), u);
        return 0;
    }
    if (overflow < 0 || (x == -1 && PyErr_Occurred())) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_OverflowError, "int out of range");
        }
        return -1;
    }
    b->len += (Py_ssize_t)mp_int(MB_AT(b), x);
    return 0;
}

static int
mb_float(MBuf *b, double d)
{
    if (MB_NEED(b, 9) < 0) {
        return -1;
    }
    uint64_t bits;
    memcpy(&bits, &d, 8);
    b->p[b->len++] = (char)0xcb;
    b->len += (Py_ssize_t)mp_be(MB_AT(b), bits, 8);
    return 0;
}

static int
mb_byte(MBuf *b, uint8_t c)
{
    if (MB_NEED(b, 1) < 0) {
        return -1;
    }
    b->p[b->len++] = (char)c;
    return 0;
}

enum { ENC_ERROR = -1, ENC_OTHER = 0, ENC_DONE = 1 }; /* ENC_OTHER: not the plain case */
#define SCAN_FIRST_MAX 64 /* texts up to this long are scanned before any cache lookup */

static int enc_dict(DictWalk *w, WalkCfg *cfg, PyObject *red, PyObject *cache, PyObject *d, Py_ssize_t depth,
                    MBuf *b);

/* One value under a normal key: walk_value's plain cases, written rather than copied. */
static int
enc_value(DictWalk *w, WalkCfg *cfg, PyObject *red, PyObject *cache, PyObject *v, Py_ssize_t depth, MBuf *b)
{
    if (PyUnicode_CheckExact(v)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(v);
        if (n <= SCAN_FIRST_MAX && n <= cfg->max_str && cfg->prefilter && !rule_may(v, cfg->words)) {
            /* Short, and no rule can match it: clean, whatever the cache holds (which could
             * only be the text itself). Both scans cost less than hashing it for a lookup. */
            return mb_str(b, v) < 0 ? ENC_ERROR : ENC_DONE;
        }
        PyObject *e = PyDict_GetItemWithError(cache, v); /* borrowed */
        if (e != NULL) {
            /* a str entry is the text itself (no rule matched); else a hit to count again */
            return PyUnicode_CheckExact(e) ? (mb_str(b, e) < 0 ? ENC_ERROR : ENC_DONE) : ENC_OTHER;
        }
        if (PyErr_Occurred()) {
            return ENC_ERROR;
        }
        if (PyUnicode_GET_LENGTH(v) > cfg->max_str || !clean_text(red, cfg, cache, v)) {
            return ENC_OTHER; /* to cut, or a rule may match: the walk's Python helpers */
        }
        return mb_str(b, v) < 0 ? ENC_ERROR : ENC_DONE;
    }
    if (PyLong_CheckExact(v)) {
        int fits = int_fits(v);
        return fits < 0 ? ENC_ERROR : !fits ? ENC_OTHER : mb_int(b, v) < 0 ? ENC_ERROR : ENC_DONE;
    }
    if (PyFloat_CheckExact(v)) {
        return mb_float(b, PyFloat_AS_DOUBLE(v)) < 0 ? ENC_ERROR : ENC_DONE;
    }
    if (PyBool_Check(v) || v == Py_None) {
        return mb_byte(b, v == Py_None ? 0xc0 : v == Py_True ? 0xc3 : 0xc2) < 0 ? ENC_ERROR : ENC_DONE;
    }
    if (PyDict_CheckExact(v)) {
        return enc_dict(w, cfg, red, cache, v, depth, b);
    }
    return ENC_OTHER;
}

/* walk_dict's plain case, written: every key a str of the normal class. */
static int
enc_dict(DictWalk *w, WalkCfg *cfg, PyObject *red, PyObject *cache, PyObject *d, Py_ssize_t depth, MBuf *b)
{
    Py_ssize_t n = PyDict_GET_SIZE(d);
    if (depth > cfg->max_depth || n > cfg->max_items) {
        return ENC_OTHER; /* a marker or a cut, counted as degraded: the walk does that */
    }
    if (MB_NEED(b, 5) < 0) {
        return ENC_ERROR;
    }
    b->len += (Py_ssize_t)MP_MAP_HEAD(MB_AT(b), (uint64_t)n);
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(d, &pos, &k, &v)) {
        if (!PyUnicode_CheckExact(k)) {
            return ENC_OTHER;
        }
        Py_INCREF(k);
        Py_INCREF(v);
        int rc = ENC_OTHER;
        long cls = -1;
        PyObject *kc = PyDict_GetItemWithError(cfg->key_cache, k); /* borrowed */
        if (kc != NULL) {
            cls = PyLong_AsLong(kc);
        }
        else if (!PyErr_Occurred()) {
            /* first sight of this key: classify (and cache) it as the walk does */
            PyObject *a[2] = {red, k};
            PyObject *pair = PyObject_Vectorcall(w->key_slow, a, 2, NULL);
            if (pair != NULL && PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2 &&
                PyTuple_GET_ITEM(pair, 0) == k) {
                cls = PyLong_AsLong(PyTuple_GET_ITEM(pair, 1));
            }
            Py_XDECREF(pair);
        }
        if (cls == 0) { /* _KEY_NORMAL */
            rc = mb_str(b, k) < 0 ? ENC_ERROR : enc_value(w, cfg, red, cache, v, depth + 1, b);
        }
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc != ENC_DONE) {
            return PyErr_Occurred() ? ENC_ERROR : ENC_OTHER;
        }
        if (PyDict_GET_SIZE(d) != n) {
            return ENC_OTHER; /* changed under the walk: the walk retries on a snapshot */
        }
    }
    return ENC_DONE;
}

static PyObject *
DictWalk_encode(DictWalk *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "encode(redactor, d)");
        return NULL;
    }
    PyObject *red = args[0], *d = args[1];
    if (!PyDict_CheckExact(d)) {
        Py_RETURN_NONE;
    }
    WalkCfg cfg;
    if (read_cfg(red, &cfg) < 0) {
        return NULL;
    }
    PyObject *out = NULL;
    PyObject *cache = PyObject_GetAttr(red, str_cache);
    if (cache != NULL && PyDict_Check(cache)) {
        MBuf b;
        b.p = b.small;
        b.len = 0;
        b.cap = (Py_ssize_t)sizeof(b.small);
        b.heap = 0;
        if (enc_dict(self, &cfg, red, cache, d, 0, &b) == ENC_DONE) {
            out = PyBytes_FromStringAndSize(b.p, b.len);
        }
        if (b.heap) {
            PyMem_Free(b.p);
        }
    }
    Py_XDECREF(cache);
    Py_DECREF(cfg.key_cache);
    Py_XDECREF(cfg.words);
    if (out == NULL) {
        PyErr_Clear(); /* not the plain case (or a failure): the caller takes the usual path */
        Py_RETURN_NONE;
    }
    return out;
}

static PyMethodDef DictWalk_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))DictWalk_encode, METH_FASTCALL,
     "encode($self, redactor, d, /)\n--\n\n"
     "MessagePack of self(redactor, d, '', 0, set()) for the plain case, in one walk; else None."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DictWalkType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "flightrec._redact_native.DictWalk",
    .tp_basicsize = sizeof(DictWalk),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "DictWalk(**helpers)(redactor, d, path, depth, active): Redactor._dict, not raw, in C.",
    .tp_new = DictWalk_new,
    .tp_dealloc = (destructor)DictWalk_dealloc,
    .tp_vectorcall_offset = offsetof(DictWalk, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_methods = DictWalk_methods,
};

/* ---------------------------------------------------------------- digit prefilter */

static inline int
is_decimal(Py_UCS4 c)
{
    return c < 128 ? (c >= '0' && c <= '9') : Py_UNICODE_ISDECIMAL(c); /* what \d matches */
}

static inline int
is_upper_or_digit(Py_UCS4 c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/*
 * digits_may_match(text) -> bool
 *
 * False only when no digit-triggered fragment of the scanner (IBAN, IPv4, SSN, the
 * numeric phone forms, card) can match anywhere in ``text``; the Redactor then scans with
 * the pattern without them, which is much cheaper on text full of digits (times, prices,
 * flight numbers) and finds exactly the same matches. Each condition is necessary, read
 * off the fragments in redact.patterns._FRAGS:
 *
 * - IBAN: an ASCII digit after two letters A-Z, a digit after it, then (after an optional
 *   space) four characters of [A-Z0-9];
 * - IPv4: three dots, each between two digits;
 * - SSN, phones, cards: at least 9 digits in one run of digits and " -.()" (their
 *   separators).
 *
 * ``\d`` is Unicode-aware in these patterns, so "digit" means any decimal digit here.
 * The rules read a text in its folded form (no-break spaces as spaces, full-width digits as
 * ASCII ones): rule_may tests that form, and the Redactor passes it.
 */
static int
digits_may(PyObject *text)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t run = 0; /* digits in the current run of digits and separators */
    int dots = 0;       /* dots between two digits */
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (is_decimal(c)) {
            if (++run >= 9) {
                return 1;
            }
            if (c <= '9' && i >= 2 && i + 1 < n) {
                Py_UCS4 a = PyUnicode_READ(kind, data, i - 2), b = PyUnicode_READ(kind, data, i - 1);
                if (a >= 'A' && a <= 'Z' && b >= 'A' && b <= 'Z' && is_decimal(PyUnicode_READ(kind, data, i + 1))) {
                    Py_ssize_t q = i + 2;
                    if (q < n && PyUnicode_READ(kind, data, q) == ' ') {
                        q++;
                    }
                    if (q + 4 <= n && is_upper_or_digit(PyUnicode_READ(kind, data, q)) &&
                        is_upper_or_digit(PyUnicode_READ(kind, data, q + 1)) &&
                        is_upper_or_digit(PyUnicode_READ(kind, data, q + 2)) &&
                        is_upper_or_digit(PyUnicode_READ(kind, data, q + 3))) {
                        return 1;
                    }
                }
            }
        }
        else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') {
            if (c == '.' && i > 0 && i + 1 < n && is_decimal(PyUnicode_READ(kind, data, i - 1)) &&
                is_decimal(PyUnicode_READ(kind, data, i + 1)) && ++dots >= 3) {
                return 1;
            }
        }
        else {
            run = 0;
        }
    }
    return 0;
}

static PyObject *
digits_may_match(PyObject *Py_UNUSED(module), PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "digits_may_match(text: str)");
        return NULL;
    }
    return PyBool_FromLong(digits_may(text));
}

/* Whether text[i:i+len(lit)] == lit (ASCII lit); false past the end. */
static inline int
follows(int kind, const void *data, Py_ssize_t n, Py_ssize_t i, const char *lit)
{
    for (Py_ssize_t k = 0; lit[k] != '\0'; k++) {
        if (i + k >= n || PyUnicode_READ(kind, data, i + k) != (Py_UCS4)(unsigned char)lit[k]) {
            return 0;
        }
    }
    return 1;
}

/*
 * light_may_match(text, words=None) -> bool
 *
 * ``words``: the user's extra secret key names (Redactor._extra_words: normalized, without
 * their '_'), which count as the built-in ones do below. False only when none of the scanner's other fragments (those digits_may_match does not
 * cover) can match anywhere in ``text``: then a text that passes both tests needs no
 * regex search at all, which is most of the cost of redacting clean prose. Each
 * condition is necessary for its fragment in redact.patterns._FRAGS (the character that triggers
 * it, then the context its pattern or look-behinds demand):
 *
 * - '-': "----BEGIN" follows (private key), "sk" precedes (OpenAI, Anthropic), "xox"
 *   one before that (Slack), or "gl" two, three or four before that (GitLab), "xapp"
 *   (Slack app-level) or "pypi" precedes (PyPI);
 * - ':': "//" follows and an '@' comes later (URL password); IPv6: a run of hex digits,
 *   '.' and ':' that holds "::" or at least six colons;
 * - ':', '=': a secret key name (built-in or one of ``words``) ends right before, or
 *   before one quote, blank or escaped quote (secret-named key in text: password=...,
 *   "api_key": "...");
 * - '"', '\'': a blank, and a secret key name right before it (a quoted value after the
 *   name and a blank: --password 'x');
 * - 'J': "ey" precedes (JWT); 'A': "KIA", "SIA" or "Iza" follows (AWS, Google);
 * - '_': "sk", "rk" or "pk" precedes (Stripe), "gh" one before that, or "github" (GitHub),
 *   "hf" (Hugging Face), "npm" (npm), "whsec" (Stripe webhook); 'G': "S" precedes and '.'
 *   follows (SendGrid); 'y': "a29." follows (Google OAuth);
 * - 'z'/'Z': "authori" precedes, in any case (Authorization header);
 * - 'B'/'b': "earer" follows (Bearer token);
 * - '@': an e-mail local-part character (or a letter or digit of any script, or a combining
 *   accent) precedes and a letter or digit of any script follows;
 *   '%': "40" follows (URL-encoded e-mail); '+', '(': a digit follows (phones).
 */
static inline int
is_alnum_ascii(Py_UCS4 c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int
is_alnum_any(Py_UCS4 c) /* [^\W_]: a letter or digit of any script */
{
    return c < 128 ? is_alnum_ascii(c) : Py_UNICODE_ISALNUM(c);
}

static inline int
is_local(Py_UCS4 c) /* [A-Za-z0-9._%+\-]: an ASCII character of an e-mail's local part */
{
    return is_alnum_ascii(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static inline Py_UCS4
lower_ascii(Py_UCS4 c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* The secret key-name endings and names of redact.config (_SECRET_KEY_ENDINGS,
 * _SECRET_KEY_NAMES) with their '_' removed, and their lengths. tests/test_redact_native.py
 * checks that every one of them, in every spelling, passes light_may_match. */
#define SECRET_WORD(w) {w, sizeof(w) - 1}
static const struct {
    const char *word;
    Py_ssize_t len;
} secret_words[] = {
    SECRET_WORD("password"),   SECRET_WORD("passwords"),     SECRET_WORD("passwd"),     SECRET_WORD("passphrase"),
    SECRET_WORD("pwd"),        SECRET_WORD("secret"),        SECRET_WORD("secrets"),    SECRET_WORD("secretkey"),
    SECRET_WORD("token"),      SECRET_WORD("apikey"),        SECRET_WORD("apikeys"),    SECRET_WORD("accesskey"),
    SECRET_WORD("privatekey"), SECRET_WORD("authorization"), SECRET_WORD("cookie"),     SECRET_WORD("cookies"),
    SECRET_WORD("credential"), SECRET_WORD("credentials"),   SECRET_WORD("sessionid"),  SECRET_WORD("passcode"),
    SECRET_WORD("signingkey"), SECRET_WORD("encryptionkey"), SECRET_WORD("pin"),        SECRET_WORD("otp"),
    SECRET_WORD("auth"),       SECRET_WORD("cvv"),           SECRET_WORD("cvc"),
};
#undef SECRET_WORD

/* Whether text[..end) ends with ``word`` (``k`` lower-case ASCII characters, no '_'), in
 * any case, ignoring '_' and '-'. */
static inline int
word_ends_at(int kind, const void *data, Py_ssize_t end, const char *word, Py_ssize_t k)
{
    Py_ssize_t i = end;
    while (k > 0 && i > 0) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i - 1);
        if (c == '_' || c == '-') {
            i--;
            continue;
        }
        if (lower_ascii(c) != (Py_UCS4)(unsigned char)word[k - 1]) {
            return 0;
        }
        i--;
        k--;
    }
    return k == 0;
}

/* Whether ``words`` is what light_may takes for the user's extra key names: None, or a tuple
 * of non-empty ASCII str of lower-case letters and digits (redact.config.normalize_key's
 * output without its '_', which is all Redactor._extra_words holds). */
static int
words_ok(PyObject *words)
{
    if (words == NULL || words == Py_None) {
        return 1;
    }
    if (!PyTuple_CheckExact(words)) {
        return 0;
    }
    for (Py_ssize_t w = 0; w < PyTuple_GET_SIZE(words); w++) {
        PyObject *word = PyTuple_GET_ITEM(words, w);
        if (!PyUnicode_CheckExact(word) || !PyUnicode_IS_ASCII(word) || PyUnicode_GET_LENGTH(word) == 0) {
            return 0;
        }
        const Py_UCS1 *c = PyUnicode_1BYTE_DATA(word);
        for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(word); i++) {
            if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= '0' && c[i] <= '9'))) {
                return 0;
            }
        }
    }
    return 1;
}

/* Whether text[..end) ends with a secret word, in any case, ignoring '_' and '-' (so
 * "DB_PASSWORD", "X-Api-Key" and "apiKey" all end with one): a built-in one, or one of
 * ``words`` (the user's extra key names; NULL or None for none, else checked by words_ok).
 * The built-in ones end in an ASCII letter, so a time's "12:" costs one test. */
static int
secret_word_ends_at(int kind, const void *data, Py_ssize_t end, PyObject *words)
{
    if (end <= 0) {
        return 0;
    }
    Py_UCS4 last = lower_ascii(PyUnicode_READ(kind, data, end - 1));
    if (words != NULL && words != Py_None) {
        for (Py_ssize_t w = 0; w < PyTuple_GET_SIZE(words); w++) {
            PyObject *word = PyTuple_GET_ITEM(words, w);
            Py_ssize_t k = PyUnicode_GET_LENGTH(word);
            const char *chars = (const char *)PyUnicode_1BYTE_DATA(word);
            if ((Py_UCS4)(unsigned char)chars[k - 1] == last && word_ends_at(kind, data, end, chars, k)) {
                return 1;
            }
        }
    }
    if (last < 'a' || last > 'z') {
        return 0;
    }
    for (size_t w = 0; w < sizeof(secret_words) / sizeof(secret_words[0]); w++) {
        const char *word = secret_words[w].word;
        Py_ssize_t k = secret_words[w].len;
        if ((Py_UCS4)(unsigned char)word[k - 1] == last && word_ends_at(kind, data, end, word, k)) {
            return 1;
        }
    }
    return 0;
}

/* Whether the ':' or '=' at text[i] follows a secret key name, directly or after one quote,
 * blank or escaped quote (the contexts of the "secret" fragment's look-behinds). */
static int
secret_key_before(int kind, const void *data, Py_ssize_t i, PyObject *words)
{
    if (secret_word_ends_at(kind, data, i, words)) {
        return 1;
    }
    if (i < 1) {
        return 0;
    }
    Py_UCS4 c = PyUnicode_READ(kind, data, i - 1);
    if (c != '"' && c != '\'' && c != ' ' && c != '\t') {
        return 0;
    }
    return secret_word_ends_at(kind, data, i - 1, words) ||
           (c == '"' && i >= 2 && PyUnicode_READ(kind, data, i - 2) == '\\' &&
            secret_word_ends_at(kind, data, i - 2, words));
}

static int
light_may(PyObject *text, PyObject *words)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
#define AT(i) PyUnicode_READ(kind, data, (i))
#define FOLLOWS(i, lit) follows(kind, data, n, (i), (lit))
#define PRECEDES(i, lit) ((i) >= (Py_ssize_t)strlen(lit) && follows(kind, data, n, (i) - (Py_ssize_t)strlen(lit), (lit)))
    Py_ssize_t colons = 0;  /* in the current run of hex digits, '.' and ':' */
    int at_later = -1;      /* whether an '@' follows the first "://" seen (-1: not looked) */
    Py_UCS4 prev = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = AT(i);
        if (c == ':') {
            if (prev == ':' || ++colons >= 6) {
                return 1;
            }
        }
        else if (c != '.' && !is_hex(c)) {
            colons = 0;
        }
        prev = c;
        switch (c) {
        case '-':
            if (FOLLOWS(i + 1, "----BEGIN") || PRECEDES(i, "sk") || (i >= 4 && PRECEDES(i - 1, "xox")) ||
                (i >= 4 && PRECEDES(i - 2, "gl")) || (i >= 5 && PRECEDES(i - 3, "gl")) || (i >= 6 && PRECEDES(i - 4, "gl")) ||
                PRECEDES(i, "xapp") || PRECEDES(i, "pypi")) {
                return 1;
            }
            break;
        case '=':
            if (secret_key_before(kind, data, i, words)) {
                return 1;
            }
            break;
        case ':':
            if (secret_key_before(kind, data, i, words)) {
                return 1;
            }
            if (FOLLOWS(i + 1, "//")) {
                if (at_later < 0) {
                    at_later = 0;
                    for (Py_ssize_t j = i + 3; j < n; j++) {
                        if (AT(j) == '@') {
                            at_later = 1;
                            break;
                        }
                    }
                }
                if (at_later) {
                    return 1;
                }
            }
            break;
        case 'J':
            if (PRECEDES(i, "ey")) {
                return 1;
            }
            break;
        case 'A':
            if (FOLLOWS(i + 1, "KIA") || FOLLOWS(i + 1, "SIA") || FOLLOWS(i + 1, "Iza")) {
                return 1;
            }
            break;
        case '_':
            if ((i >= 2 && AT(i - 1) == 'k' && (AT(i - 2) == 's' || AT(i - 2) == 'r' || AT(i - 2) == 'p')) ||
                (i >= 3 && PRECEDES(i - 1, "gh")) || PRECEDES(i, "github") || PRECEDES(i, "hf") || PRECEDES(i, "npm") ||
                PRECEDES(i, "whsec")) {
                return 1;
            }
            break;
        case 'y':
            if (FOLLOWS(i + 1, "a29.")) {
                return 1;
            }
            break;
        case 'G':
            if (PRECEDES(i, "S") && FOLLOWS(i + 1, ".")) {
                return 1;
            }
            break;
        case 'z':
        case 'Z':
            if (i >= 7) {
                const char *w = "authori";
                int same = 1;
                for (int k = 0; k < 7 && same; k++) {
                    same = lower_ascii(AT(i - 7 + k)) == (Py_UCS4)w[k];
                }
                if (same) {
                    return 1;
                }
            }
            break;
        case 'B':
        case 'b':
            if (FOLLOWS(i + 1, "earer")) {
                return 1;
            }
            break;
        case '@':
            if (i >= 1 && i + 1 < n && is_alnum_any(AT(i + 1)) &&
                (is_local(AT(i - 1)) || is_alnum_any(AT(i - 1)) || (AT(i - 1) >= 0x300 && AT(i - 1) < 0x370))) {
                return 1;
            }
            break;
        case '"':
        case '\'':
            /* a quoted value after a secret key name and a blank ("--password 'x'") */
            if (i >= 2 && (AT(i - 1) == ' ' || AT(i - 1) == '\t') && secret_word_ends_at(kind, data, i - 1, words)) {
                return 1;
            }
            break;
        case '%':
            if (FOLLOWS(i + 1, "40")) {
                return 1;
            }
            break;
        case '+':
        case '(':
            if (i + 1 < n && AT(i + 1) >= '0' && AT(i + 1) <= '9') {
                return 1;
            }
            break;
        default:
            break;
        }
    }
    return 0;
#undef AT
#undef FOLLOWS
#undef PRECEDES
}

/* ---------------------------------------------------------------- folded forms */

/* The ASCII form the rules read a character as (redact.patterns._FOLD): the full-width
 * forms U+FF01-FF5E as CJK text writes digits, '+', '-' and the rest, and the no-break and
 * ideographic spaces (U+00A0, U+202F, U+3000) that group digits; any other character as is. */
static inline Py_UCS4
fold_char(Py_UCS4 c)
{
    if (c >= 0xFF01 && c <= 0xFF5E) {
        return c - 0xFEE0;
    }
    return c == 0xA0 || c == 0x202F || c == 0x3000 ? ' ' : c;
}

/* Whether any rule may match ``text`` (digits_may or light_may), read as the rules read it:
 * a text holding characters to fold is tested in its folded form (a copy; only such text
 * pays for it, an ASCII text is tested as it is). Never fails: without memory for the copy,
 * the answer is "may" and the Python scan decides. */
static int
rule_may(PyObject *text, PyObject *words)
{
    if (!PyUnicode_IS_ASCII(text)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(text);
        int kind = PyUnicode_KIND(text);
        const void *data = PyUnicode_DATA(text);
        Py_ssize_t first = 0;
        while (first < n && fold_char(PyUnicode_READ(kind, data, first)) == PyUnicode_READ(kind, data, first)) {
            first++;
        }
        if (first < n) {
            PyObject *folded = PyUnicode_New(n, PyUnicode_MAX_CHAR_VALUE(text));
            if (folded == NULL) {
                PyErr_Clear();
                return 1;
            }
            int fkind = PyUnicode_KIND(folded);
            void *fdata = PyUnicode_DATA(folded);
            for (Py_ssize_t i = 0; i < n; i++) {
                PyUnicode_WRITE(fkind, fdata, i, fold_char(PyUnicode_READ(kind, data, i)));
            }
            int may = digits_may(folded) || light_may(folded, words);
            Py_DECREF(folded);
            return may;
        }
    }
    return digits_may(text) || light_may(text, words);
}

/* The (text, words=None) arguments of light_may_match and no_rule_can_match; 0 if bad. */
static int
prefilter_args(PyObject *const *args, Py_ssize_t nargs, const char *name, PyObject **words)
{
    *words = nargs == 2 ? args[1] : NULL;
    if (nargs < 1 || nargs > 2 || !PyUnicode_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s(text: str, words: tuple[str, ...] | None = None)", name);
        return 0;
    }
    if (!words_ok(*words)) {
        PyErr_Format(PyExc_TypeError, "%s: words must be a tuple of lower-case ASCII letters and digits", name);
        return 0;
    }
    return 1;
}

static PyObject *
light_may_match(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *words;
    if (!prefilter_args(args, nargs, "light_may_match", &words)) {
        return NULL;
    }
    return PyBool_FromLong(light_may(args[0], words));
}

/* no_rule_can_match(text, words=None) -> bool: both tests in one call (True: neither can match). */
static PyObject *
no_rule_can_match(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *words;
    if (!prefilter_args(args, nargs, "no_rule_can_match", &words)) {
        return NULL;
    }
    return PyBool_FromLong(!rule_may(args[0], words));
}

static PyMethodDef module_methods[] = {
    {"digits_may_match", (PyCFunction)digits_may_match, METH_O,
     "digits_may_match(text) -> bool: False when no digit-triggered rule can match in text."},
    {"no_rule_can_match", (PyCFunction)(void (*)(void))no_rule_can_match, METH_FASTCALL,
     "no_rule_can_match(text, words=None) -> bool: True when neither prefilter lets a rule match in text\n"
     "(words: the redactor's extra secret key names, normalized, without '_')."},
    {"light_may_match", (PyCFunction)(void (*)(void))light_may_match, METH_FASTCALL,
     "light_may_match(text, words=None) -> bool: False when no other rule of the scanner can match in text."},
    {"chk_card", (PyCFunction)(void (*)(void))chk_card, METH_FASTCALL,
     "chk_card(text, a, b) -> (a, b) | None: redact.checks._chk_card for the scanner's candidates."},
    {"chk_ipv6", (PyCFunction)(void (*)(void))chk_ipv6, METH_FASTCALL,
     "chk_ipv6(text, a, b) -> (a, b) | None: redact.checks._chk_ipv6 for the scanner's candidates."},
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(text, first, search, handlers, pseudonym, hits) -> str | None\n\n"
     "The match loop of flightrec.redact.Redactor._scan, from its first match on."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "flightrec._redact_native", "The redactor's pseudonym hash and match loop, in C.", -1,
    module_methods,
};

PyMODINIT_FUNC
PyInit__redact_native(void)
{
    str_span = PyUnicode_InternFromString("span");
    str_lastindex = PyUnicode_InternFromString("lastindex");
    str_empty = PyUnicode_FromString("");
    one_obj = PyLong_FromLong(1);
    str_key_cache = PyUnicode_InternFromString("_key_cache");
    str_walk_settings = PyUnicode_InternFromString("_walk_settings");
    str_cache = PyUnicode_InternFromString("_cache");
    str_max_str = PyUnicode_InternFromString("_max_str");
    str_max_depth = PyUnicode_InternFromString("_max_depth");
    str_max_items = PyUnicode_InternFromString("_max_items");
    str_degraded = PyUnicode_InternFromString("_degraded");
    str_prefilter = PyUnicode_InternFromString("_prefilter");
    str_cache_gen_max = PyUnicode_InternFromString("_cache_gen_max");
    str_cache_chars = PyUnicode_InternFromString("_cache_chars");
    str_extra_words = PyUnicode_InternFromString("_extra_words");
    if (!str_extra_words || !str_span || !str_lastindex || !str_empty || !one_obj || !str_key_cache || !str_walk_settings || !str_cache || !str_max_str ||
        !str_max_depth || !str_max_items || !str_degraded || !str_prefilter ||
        !str_cache_gen_max || !str_cache_chars) {
        return NULL;
    }
    if (PyType_Ready(&KeyedType) < 0 || PyType_Ready(&DictWalkType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&KeyedType);
    if (PyModule_AddObject(m, "Keyed", (PyObject *)&KeyedType) < 0) {
        Py_DECREF(&KeyedType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "CACHE_MAX_ENTRY", CACHE_MAX_ENTRY) < 0 ||
        PyModule_AddIntConstant(m, "CACHE_MAX_CHARS", CACHE_MAX_CHARS) < 0 ||
        PyModule_AddIntConstant(m, "ID_MAX_LEN", ID_MAX_LEN) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&DictWalkType);
    if (PyModule_AddObject(m, "DictWalk", (PyObject *)&DictWalkType) < 0) {
        Py_DECREF(&DictWalkType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
