/*
 * flightrec._fastpath: the common case of Recorder.record() in C.
 *
 * Optional: flightrec works the same without it (pure Python), only slower. Set
 * FLIGHTREC_PURE_PYTHON=1 to ignore it.
 *
 * The common case is an event that is not pinned and not an error, of a kind the sampler
 * keeps whole (its counter is in Sampler._fast), that encodes to at most max_event bytes
 * and fits the open block. Everything else is handed to the Python implementation,
 * before anything was counted or written, or (encoding fallbacks, a full block) to the
 * same Python helpers that path uses. The C code works on the recorder's own objects:
 * the Python lock, seq counter and ring state are the ones the Python code uses, so the
 * two paths interleave freely under the lock. The ring's slots are reached at their
 * offsets (RingWriter has __slots__), read and written as Python ints.
 *
 * No agent code runs under the lock: the event is encoded with a hook-less encoder, and
 * data it refuses is converted by EventEncoder.prepare (model_dump, __repr__) after the
 * lock is let go, then the event is tried again.
 *
 * Nothing here may raise into the agent: an unexpected error is cleared and counted in
 * Recorder.errors, as the Python path does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "_msgpack.h"

typedef struct {
    PyObject_HEAD
    PyObject *rec;          /* the Recorder */
    PyObject *ring;         /* its RingWriter */
    PyObject *fast;         /* Sampler._fast: kind -> incr callable */
    PyObject *span_var;     /* context.current_span */
    PyObject *tls;          /* context._tls */
    PyObject *thread_name;  /* context.thread_name */
    PyObject *acquire;      /* Recorder._lock.acquire */
    PyObject *release;      /* Recorder._lock.release */
    PyObject *encode;       /* EventEncoder.fast_encode: runs no code of the agent's */
    PyObject *encode_safe;  /* EventEncoder.encode(seq, ts, kind, thread, span, parent, data) */
    PyObject *prepare;      /* EventEncoder.prepare(data, kind, thread): conversions, unlocked */
    PyObject *redacted;     /* Recorder._redacted(data, kind), or None when not redacting */
    PyObject *redact;       /* Redactor.redact (never raises), or NULL when not redacting */
    PyObject *dict_walk;    /* the C dict walk, called as redact() would call it, or NULL */
    PyObject *redactor;     /* its Redactor */
    PyObject *fused;        /* dict_walk.encode(redactor, data): the redacted data encoded, or None */
    /* Recorder._redacted's payload cache, used here in C (the same objects as in Python): */
    PyObject *cache_misses; /* kind -> consecutive misses (dict), or NULL: call redacted instead */
    PyObject *redact_cache; /* encoded payload -> msgspec.Raw of its redacted encoding (dict) */
    PyObject *encode_data;  /* the plain encoder's encode */
    PyObject *raw_type;     /* msgspec.Raw */
    long give_up;           /* recorder._CACHE_GIVE_UP */
    PyObject *slow;         /* the Python Recorder.record(kind, data, pin, is_error, fresh) */
    PyObject *ring_append;  /* RingWriter.append(event, seq, ts): flushes a full block */
    Py_ssize_t max_event;
    Py_ssize_t max_value;   /* Config.max_value: stored characters of a tool's result */
    Py_ssize_t len_field;   /* offset of the open block's committed-length u64 */
    Py_ssize_t off_open_end, off_open_limit, off_last_seq, off_last_ts, off_open_offset;
    Py_buffer buf;
    int has_buf;
} Fast;

static PyObject *active = NULL;   /* the Fast object flightrec.record() uses, or NULL */
static PyObject *fallback = NULL; /* with no active Fast: the Python record(), or NULL (not recording) */

static PyObject *str_seq, *str_closed, *str_errors, *str_name, *str_pin;

/* ---------------------------------------------------------------- slot access */

static Py_ssize_t
slot_offset(PyObject *type, const char *name)
{
    PyObject *descr = PyObject_GetAttrString(type, name);
    if (descr == NULL) {
        return -1;
    }
    Py_ssize_t off = -1;
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type == T_OBJECT_EX) {
            off = m->offset;
        }
    }
    Py_DECREF(descr);
    if (off < 0) {
        PyErr_Format(PyExc_TypeError, "%s is not an object slot", name);
    }
    return off;
}

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* The slot's value as a C integer; -1 with an exception set if it is not an int. */
static long long
slot_ll(PyObject *obj, Py_ssize_t off)
{
    PyObject *v = SLOT(obj, off);
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "ring slot unset");
        return -1;
    }
    return PyLong_AsLongLong(v);
}

static int
slot_set_ll(PyObject *obj, Py_ssize_t off, long long value)
{
    PyObject *v = PyLong_FromLongLong(value);
    if (v == NULL) {
        return -1;
    }
    Py_XSETREF(SLOT(obj, off), v);
    return 0;
}

/* ---------------------------------------------------------------- the type */

static int
Fast_traverse(Fast *self, visitproc visit, void *arg)
{
    Py_VISIT(self->rec);
    Py_VISIT(self->ring);
    Py_VISIT(self->fast);
    Py_VISIT(self->span_var);
    Py_VISIT(self->tls);
    Py_VISIT(self->thread_name);
    Py_VISIT(self->acquire);
    Py_VISIT(self->release);
    Py_VISIT(self->encode);
    Py_VISIT(self->encode_safe);
    Py_VISIT(self->prepare);
    Py_VISIT(self->redacted);
    Py_VISIT(self->redact);
    Py_VISIT(self->dict_walk);
    Py_VISIT(self->redactor);
    Py_VISIT(self->fused);
    Py_VISIT(self->cache_misses);
    Py_VISIT(self->redact_cache);
    Py_VISIT(self->encode_data);
    Py_VISIT(self->raw_type);
    Py_VISIT(self->slow);
    Py_VISIT(self->ring_append);
    return 0;
}

static void
release_buffer(Fast *self)
{
    if (self->has_buf) {
        self->has_buf = 0;
        PyBuffer_Release(&self->buf);
    }
}

static int
Fast_clear(Fast *self)
{
    release_buffer(self);
    Py_CLEAR(self->rec);
    Py_CLEAR(self->ring);
    Py_CLEAR(self->fast);
    Py_CLEAR(self->span_var);
    Py_CLEAR(self->tls);
    Py_CLEAR(self->thread_name);
    Py_CLEAR(self->acquire);
    Py_CLEAR(self->release);
    Py_CLEAR(self->encode);
    Py_CLEAR(self->encode_safe);
    Py_CLEAR(self->prepare);
    Py_CLEAR(self->redacted);
    Py_CLEAR(self->redact);
    Py_CLEAR(self->dict_walk);
    Py_CLEAR(self->redactor);
    Py_CLEAR(self->fused);
    Py_CLEAR(self->cache_misses);
    Py_CLEAR(self->redact_cache);
    Py_CLEAR(self->encode_data);
    Py_CLEAR(self->raw_type);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->ring_append);
    return 0;
}

static void
Fast_dealloc(Fast *self)
{
    PyObject_GC_UnTrack(self);
    Fast_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Fast_init(Fast *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"rec",     "ring",     "fast", "span_var", "tls", "thread_name", "acquire",   "release",
                             "encode",  "encode_safe", "prepare", "redacted", "slow", "mm",  "max_event", "len_field",
                             "redact", "dict_walk", "redactor", "max_value", "payload_cache",
                             NULL};
    PyObject *rec, *ring, *fast, *span_var, *tls, *thread_name, *acquire, *release, *encode, *encode_safe,
        *prepare, *redacted, *slow, *mm;
    PyObject *redact = Py_None, *dict_walk = Py_None, *redactor = Py_None;
    PyObject *payload_cache = Py_None; /* (cache_misses, redact_cache, encode_data, raw_type, give_up) */
    Py_ssize_t max_event, len_field, max_value = 4096;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO!OOOOOOOOOOOnn|OOOnO", kwlist, &rec, &ring, &PyDict_Type,
                                     &fast, &span_var, &tls, &thread_name, &acquire, &release, &encode,
                                     &encode_safe, &prepare, &redacted, &slow, &mm, &max_event, &len_field,
                                     &redact, &dict_walk, &redactor, &max_value, &payload_cache)) {
        return -1;
    }
    if (payload_cache != Py_None &&
        (!PyTuple_CheckExact(payload_cache) || PyTuple_GET_SIZE(payload_cache) != 5 ||
         !PyDict_CheckExact(PyTuple_GET_ITEM(payload_cache, 0)) ||
         !PyDict_CheckExact(PyTuple_GET_ITEM(payload_cache, 1)) || !PyLong_Check(PyTuple_GET_ITEM(payload_cache, 4)) ||
         redact == Py_None)) {
        PyErr_SetString(PyExc_TypeError, "payload_cache: (misses, cache, encode, Raw, give_up), with redact");
        return -1;
    }
    if (!PyContextVar_CheckExact(span_var)) {
        PyErr_SetString(PyExc_TypeError, "span_var must be a ContextVar");
        return -1;
    }
    PyObject *rtype = (PyObject *)Py_TYPE(ring);
    Py_ssize_t o1 = slot_offset(rtype, "_open_end"), o2 = slot_offset(rtype, "_open_limit"),
               o3 = slot_offset(rtype, "last_seq"), o4 = slot_offset(rtype, "last_ts"),
               o5 = slot_offset(rtype, "open_offset");
    if (o1 < 0 || o2 < 0 || o3 < 0 || o4 < 0 || o5 < 0) {
        return -1;
    }
    Fast_clear(self);
    if (PyObject_GetBuffer(mm, &self->buf, PyBUF_WRITABLE | PyBUF_SIMPLE) < 0) {
        return -1;
    }
    self->has_buf = 1;
    if (len_field < 0 || len_field + 8 > self->buf.len || max_event <= 0) {
        release_buffer(self);
        PyErr_SetString(PyExc_ValueError, "bad layout");
        return -1;
    }
    self->off_open_end = o1;
    self->off_open_limit = o2;
    self->off_last_seq = o3;
    self->off_last_ts = o4;
    self->off_open_offset = o5;
    self->max_event = max_event;
    self->max_value = max_value;
    self->len_field = len_field;
#define KEEP(field, value) (Py_INCREF(value), self->field = (value))
    KEEP(rec, rec);
    KEEP(ring, ring);
    KEEP(fast, fast);
    KEEP(span_var, span_var);
    KEEP(tls, tls);
    KEEP(thread_name, thread_name);
    KEEP(acquire, acquire);
    KEEP(release, release);
    KEEP(encode, encode);
    KEEP(encode_safe, encode_safe);
    KEEP(prepare, prepare);
    KEEP(slow, slow);
    self->ring_append = PyObject_GetAttrString(ring, "append");
    if (self->ring_append == NULL) {
        return -1;
    }
    if (redacted != Py_None) {
        KEEP(redacted, redacted);
        if (redact != Py_None) {
            KEEP(redact, redact);
            if (dict_walk != Py_None && redactor != Py_None) {
                KEEP(dict_walk, dict_walk);
                KEEP(redactor, redactor);
                self->fused = PyObject_GetAttrString(dict_walk, "encode"); /* (an older build: none) */
                if (self->fused == NULL) {
                    PyErr_Clear();
                }
            }
        }
        if (payload_cache != Py_None) {
            self->give_up = PyLong_AsLong(PyTuple_GET_ITEM(payload_cache, 4));
            if (self->give_up <= 0) {
                PyErr_Clear();
                self->give_up = 1;
            }
            KEEP(cache_misses, PyTuple_GET_ITEM(payload_cache, 0));
            KEEP(redact_cache, PyTuple_GET_ITEM(payload_cache, 1));
            KEEP(encode_data, PyTuple_GET_ITEM(payload_cache, 2));
            KEEP(raw_type, PyTuple_GET_ITEM(payload_cache, 3));
        }
    }
#undef KEEP
    return 0;
}

/* Count an error inside the recorder (Recorder.errors += 1), never raising. */
static PyObject *one;

static void
count_error(Fast *self)
{
    PyErr_Clear();
    PyObject *n = PyObject_GetAttr(self->rec, str_errors);
    if (n != NULL) {
        PyObject *m = PyNumber_Add(n, one);
        Py_DECREF(n);
        if (m != NULL) {
            PyObject_SetAttr(self->rec, str_errors, m);
            Py_DECREF(m);
        }
    }
    PyErr_Clear();
}

/* Write one encoded event into the open block and publish its length (lock held). Returns
 * 1 when written, 0 when the block is full (the caller hands it to RingWriter.append),
 * -1 on error. */
static int
append_parts(Fast *self, const char *a, Py_ssize_t na, const char *b, Py_ssize_t nb, long long seq, long long ts)
{
    PyObject *ring = self->ring;
    long long end, limit, last_seq, open_offset;
    if ((end = slot_ll(ring, self->off_open_end)) == -1 && PyErr_Occurred()) {
        return -1;
    }
    if ((limit = slot_ll(ring, self->off_open_limit)) == -1 && PyErr_Occurred()) {
        return -1;
    }
    if ((last_seq = slot_ll(ring, self->off_last_seq)) == -1 && PyErr_Occurred()) {
        return -1;
    }
    if ((open_offset = slot_ll(ring, self->off_open_offset)) == -1 && PyErr_Occurred()) {
        return -1;
    }
    Py_ssize_t n = na + nb;
    long long new_end = end + n;
    if (new_end > limit || last_seq == 0) {
        return 0; /* a flush first, or the very first event: the Python path handles both */
    }
    if (!self->has_buf || end < 0 || new_end > self->buf.len || self->len_field + 8 > self->buf.len) {
        PyErr_SetString(PyExc_ValueError, "event outside the map");
        return -1;
    }
    char *base = (char *)self->buf.buf;
    memcpy(base + end, a, (size_t)na);
    if (nb) {
        memcpy(base + end + na, b, (size_t)nb);
    }
    if (slot_set_ll(ring, self->off_open_end, new_end) < 0 || slot_set_ll(ring, self->off_last_seq, seq) < 0 ||
        slot_set_ll(ring, self->off_last_ts, ts) < 0) {
        return -1;
    }
    /* Publish after the bytes (a reader, or recover after kill -9, sees whole events only):
     * one atomic, release-ordered store of the little-endian u64 the format specifies. */
    uint64_t committed = (uint64_t)(new_end - open_offset);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    committed = __builtin_bswap64(committed);
#endif
    if (((uintptr_t)(base + self->len_field)) % 8 == 0) {
        __atomic_store_n((uint64_t *)(void *)(base + self->len_field), committed, __ATOMIC_RELEASE);
    }
    else {
        __atomic_thread_fence(__ATOMIC_RELEASE);
        memcpy(base + self->len_field, &committed, 8);
    }
    return 1;
}

static int
append_event(Fast *self, PyObject *event, long long seq, long long ts)
{
    return append_parts(self, PyBytes_AS_STRING(event), PyBytes_GET_SIZE(event), NULL, 0, seq, ts);
}

static PyObject *str_empty, *zero;

/* The redacted form of a payload that never repeats (Recorder._redacted would only miss
 * its payload cache): Redactor.redact(data), with the dict walk called straight from here
 * when the redactor allows it (as redact() itself would call it). */
static PyObject *
redact_direct(Fast *self, PyObject *data)
{
    if (self->dict_walk != NULL && PyDict_CheckExact(data)) {
        PyObject *active = PySet_New(NULL);
        if (active != NULL) {
            PyObject *argv[5] = {self->redactor, data, str_empty, zero, active};
            PyObject *out = PyObject_Vectorcall(self->dict_walk, argv, 5, NULL);
            Py_DECREF(active);
            if (out != NULL) {
                return out;
            }
        }
        PyErr_Clear(); /* redact() contains every failure: let it */
    }
    return PyObject_CallOneArg(self->redact, data);
}

static int
set_misses(Fast *self, PyObject *kind, long n)
{
    PyObject *v = PyLong_FromLong(n);
    if (v == NULL) {
        return -1;
    }
    int rc = PyDict_SetItem(self->cache_misses, kind, v);
    Py_DECREF(v);
    return rc;
}

/* Recorder._redacted's rule: after give_up misses in a row, a kind tries the payload cache
 * only once in give_up events; whether this event (``misses`` so far) skips it. */
static inline int
skips_cache(const Fast *self, long misses)
{
    return misses >= self->give_up && misses % self->give_up != 0;
}

/* Payloads whose encoding is longer than this are never kept in the payload cache. */
#define CACHE_KEY_MAX 8192

/* Whether a top-level value of ``data`` is a text longer than the payload cache keeps: its
 * encoding (the key) could never be found there, and encoding and hashing a 10 MB tool
 * result only to look it up cost milliseconds (recorder._long_text's twin). */
static int
has_long_text(PyObject *data)
{
    if (!PyDict_CheckExact(data)) {
        return 0;
    }
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(data, &pos, &k, &v)) {
        if ((PyUnicode_CheckExact(v) && PyUnicode_GET_LENGTH(v) > CACHE_KEY_MAX) ||
            (PyBytes_CheckExact(v) && PyBytes_GET_SIZE(v) > CACHE_KEY_MAX)) {
            return 1;
        }
    }
    return 0;
}

/* Recorder._redacted in C (see its docstring): the redacted payload, reused whole (as a
 * msgspec.Raw of its encoding) when the same payload was redacted before. A new
 * reference, or NULL with an error set. */
static PyObject *
redact_payload(Fast *self, PyObject *data, PyObject *kind)
{
    long misses = 0;
    PyObject *m = PyDict_GetItemWithError(self->cache_misses, kind); /* borrowed */
    if (m != NULL) {
        misses = PyLong_AsLong(m);
        if (misses == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    else if (PyErr_Occurred()) {
        return NULL;
    }
    if (skips_cache(self, misses)) {
        if (set_misses(self, kind, misses + 1) < 0) {
            return NULL;
        }
        return redact_direct(self, data);
    }
    if (has_long_text(data)) {
        return redact_direct(self, data);
    }
    PyObject *key = PyObject_CallOneArg(self->encode_data, data);
    if (key == NULL || !PyBytes_Check(key)) {
        PyErr_Clear(); /* unencodable as given: the walk sanitizes it */
        Py_XDECREF(key);
        return redact_direct(self, data);
    }
    PyObject *hit = PyDict_GetItemWithError(self->redact_cache, key); /* borrowed */
    if (hit != NULL) {
        Py_INCREF(hit);
        Py_DECREF(key);
        if (misses && set_misses(self, kind, 0) < 0) {
            Py_DECREF(hit);
            return NULL;
        }
        return hit;
    }
    if (PyErr_Occurred() || set_misses(self, kind, misses + 1) < 0) {
        Py_DECREF(key);
        return NULL;
    }
    PyObject *clean = redact_direct(self, data);
    if (clean == NULL || PyBytes_GET_SIZE(key) > CACHE_KEY_MAX) {
        Py_DECREF(key);
        return clean;
    }
    PyObject *enc = PyObject_CallOneArg(self->encode_data, clean);
    PyObject *raw = enc != NULL ? PyObject_CallOneArg(self->raw_type, enc) : NULL;
    Py_XDECREF(enc);
    if (raw == NULL) {
        PyErr_Clear();
        Py_DECREF(key);
        return clean;
    }
    if (PyDict_GET_SIZE(self->redact_cache) >= 4096) {
        PyDict_Clear(self->redact_cache); /* bounded; a full reset is cheaper than LRU bookkeeping */
    }
    int rc = PyDict_SetItem(self->redact_cache, key, raw);
    Py_DECREF(key);
    if (rc < 0) {
        Py_DECREF(raw);
        PyErr_Clear();
        return clean;
    }
    Py_DECREF(clean);
    return raw;
}

/* How fast_record redacts an event's data. */
enum { REDACT = 0, FRESH = 1 };

/* Whether fast_record takes the fused walk (DictWalk.encode) for this event: -1 no; 0 yes; a
 * count of misses > 0: yes, in place of redact_payload's walk when the payload cache has
 * given up on the kind (the caller counts the miss as that function would). A payload that
 * may repeat (REDACT) tries the payload cache first: a hit reuses a whole encoding, cheaper
 * than any walk; a fresh one, or a kind whose payloads never repeat, takes the walk that
 * writes as it goes. */
static long
fused_turn(Fast *self, PyObject *kind, PyObject *data, int mode)
{
    if (self->fused == NULL || !PyDict_CheckExact(data)) {
        return -1;
    }
    if (mode == FRESH || self->cache_misses == NULL) {
        return 0;
    }
    PyObject *m = PyDict_GetItemWithError(self->cache_misses, kind); /* borrowed */
    long misses = m != NULL ? PyLong_AsLong(m) : 0;
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return skips_cache(self, misses) ? misses : -1;
}

/* Take ``seq`` and write the encoded event (lock held): into the open block, or through
 * RingWriter.append when the block is full (a flush). 0, or -1 with an error set. */
static int
commit_event(Fast *self, PyObject *event, PyObject *seq_obj, long long seq, PyObject *ts_obj, long long ts)
{
    if (PyObject_SetAttr(self->rec, str_seq, seq_obj) < 0) {
        return -1;
    }
    int written = append_event(self, event, seq, ts);
    if (written < 0) {
        return -1;
    }
    if (written == 0) {
        PyObject *r = PyObject_CallFunctionObjArgs(self->ring_append, event, seq_obj, ts_obj, NULL);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
    }
    return 0;
}

/* ---------------------------------------------------------------- an event's fields, encoded */

/* The fields of an event around its data, written as msgspec writes the event tuple
 * (seq, ts, kind, thread, span, parent, data), MessagePack in its smallest forms (the tests
 * compare the bytes), so that data encoded by the fused walk (DictWalk.encode) needs no
 * tuple and no second encoder pass. */
enum { HEAD_MAX = 512 }; /* room for the fields before the data; longer ones take the usual path */

typedef struct {
    char b[HEAD_MAX];
    Py_ssize_t len;
} Head;

static inline int
head_room(Head *h, Py_ssize_t n)
{
    return h->len + n <= HEAD_MAX;
}

static void
head_uint(Head *h, unsigned long long x) /* (room for 9 bytes checked by the caller) */
{
    h->len += (Py_ssize_t)mp_uint((unsigned char *)h->b + h->len, x);
}

/* None, or an int of the usual range (a span id): 0, or -1 (no error set) otherwise. */
static int
head_id(Head *h, PyObject *v)
{
    if (!head_room(h, 9)) {
        return -1;
    }
    if (v == Py_None) {
        h->b[h->len++] = (char)0xc0;
        return 0;
    }
    if (!PyLong_CheckExact(v)) {
        return -1;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || x < 0) {
        PyErr_Clear();
        return -1; /* (never for ids from a counter) */
    }
    head_uint(h, (unsigned long long)x);
    return 0;
}

static int
head_str(Head *h, PyObject *s)
{
    Py_ssize_t n;
    const char *u = PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
    if (u == NULL || !head_room(h, 5 + n)) {
        PyErr_Clear();
        return -1;
    }
    h->len += (Py_ssize_t)MP_STR_HEAD((unsigned char *)h->b + h->len, (uint64_t)n);
    memcpy(h->b + h->len, u, (size_t)n);
    h->len += n;
    return 0;
}

/* The fields after seq and ts: kind, thread, span, parent (read before the lock is taken).
 * 0, or -1 (no error set) when they are not the usual types or too long. */
static int
event_tail(Head *tail, PyObject *kind, PyObject *thread, PyObject *span, PyObject *parent)
{
    tail->len = 0;
    return head_str(tail, kind) < 0 || head_str(tail, thread) < 0 || head_id(tail, span) < 0 ||
                   head_id(tail, parent) < 0 || !head_room(tail, 19)
               ? -1
               : 0;
}

/* Take ``seq`` and write the event whose data ``payload`` holds encoded (lock held), its
 * fields from ``tail`` (event_tail): into the open block, or through RingWriter.append
 * when the block is full. 0, or -1 with an error set. */
static int
commit_encoded(Fast *self, const Head *tail, PyObject *payload, PyObject *seq_obj, long long seq, PyObject *ts_obj,
               long long ts)
{
    Head head;
    head.len = 0;
    head.b[head.len++] = (char)0x97; /* an array of 7 */
    head_uint(&head, (unsigned long long)seq);
    head_uint(&head, (unsigned long long)ts);
    memcpy(head.b + head.len, tail->b, (size_t)tail->len); /* (event_tail left room for the 19 bytes) */
    head.len += tail->len;
    if (PyObject_SetAttr(self->rec, str_seq, seq_obj) < 0) {
        return -1;
    }
    Py_ssize_t plen = PyBytes_GET_SIZE(payload);
    int written = append_parts(self, head.b, head.len, PyBytes_AS_STRING(payload), plen, seq, ts);
    if (written < 0) {
        return -1;
    }
    if (written == 0) {
        PyObject *event = PyBytes_FromStringAndSize(NULL, head.len + plen);
        if (event == NULL) {
            return -1;
        }
        memcpy(PyBytes_AS_STRING(event), head.b, (size_t)head.len);
        memcpy(PyBytes_AS_STRING(event) + head.len, PyBytes_AS_STRING(payload), (size_t)plen);
        PyObject *r = PyObject_CallFunctionObjArgs(self->ring_append, event, seq_obj, ts_obj, NULL);
        Py_DECREF(event);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
    }
    return 0;
}

/* The calling thread's name as context.thread_name() gives it (read once per thread, kept
 * in a threading.local), remembered here for the last thread that asked: reading a
 * threading.local costs more than the rest of an event's bookkeeping. Keyed by the thread
 * state's address and its id, which CPython never reuses (an address alone may be reused by
 * a later thread). A new reference, or NULL with an error set. */
static const PyThreadState *last_tstate = NULL;
static uint64_t last_tstate_id = 0;
static PyObject *last_thread_name = NULL;

static PyObject *
thread_name_of_caller(Fast *self)
{
    PyThreadState *ts = PyThreadState_Get();
    if (last_thread_name != NULL && ts == last_tstate && ts->id == last_tstate_id) {
        return Py_NewRef(last_thread_name);
    }
    PyObject *name = PyObject_GetAttr(self->tls, str_name);
    if (name == NULL) {
        PyErr_Clear();
        name = PyObject_CallNoArgs(self->thread_name);
        if (name == NULL) {
            return NULL;
        }
    }
    Py_XSETREF(last_thread_name, Py_NewRef(name));
    last_tstate = ts;
    last_tstate_id = ts->id;
    return name;
}

/* forget_thread_name(): a thread was renamed (context.py hooks Thread.name's setter), so the
 * name remembered above may be stale: the next event reads it again. Nothing per event. */
static PyObject *
mod_forget_thread_name(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    last_tstate = NULL;
    Py_CLEAR(last_thread_name);
    Py_RETURN_NONE;
}

/* The fast path; a new reference (the seq, or None), never NULL. ``mode``: REDACT (through
 * the payload cache) or FRESH (a payload with a call id or a measured time, which never
 * repeats: redacted without consulting the payload cache, Recorder.record_fresh). */
static PyObject *
fast_record(Fast *self, PyObject *kind, PyObject *data, int mode)
{
    PyObject *incr = PyDict_GetItemWithError(self->fast, kind); /* borrowed */
    if (incr == NULL) {
        if (PyErr_Occurred()) {
            PyErr_Clear();
        }
        /* a kind the sampler has to decide on: the Python path, from the start */
        PyObject *r = mode == REDACT
                          ? PyObject_CallFunctionObjArgs(self->slow, kind, data, NULL)
                          : PyObject_CallFunctionObjArgs(self->slow, kind, data, Py_False, Py_False, Py_True, NULL);
        if (r == NULL) {
            count_error(self);
            Py_RETURN_NONE;
        }
        return r;
    }
    struct timespec tsp;
    clock_gettime(CLOCK_REALTIME, &tsp);
    long long ts = (long long)tsp.tv_sec * 1000000000LL + tsp.tv_nsec;

    PyObject *ctx = NULL, *span = Py_None, *parent = Py_None;
    PyObject *thread = NULL, *event = NULL, *seq_obj = NULL, *ts_obj = NULL, *tuple = NULL, *got = NULL;
    PyObject *payload = NULL; /* the redacted data, encoded by the fused walk, or NULL */
    Head tail;
    int locked = 0;
    PyObject *result = NULL;
    Py_INCREF(data);

    if (PyContextVar_Get(self->span_var, NULL, &ctx) < 0) {
        goto error;
    }
    if (ctx != NULL && ctx != Py_None) {
        if (!PyTuple_Check(ctx) || PyTuple_GET_SIZE(ctx) != 2) {
            PyErr_SetString(PyExc_TypeError, "bad span context");
            goto error;
        }
        span = PyTuple_GET_ITEM(ctx, 0);
        parent = PyTuple_GET_ITEM(ctx, 1);
    }
    PyObject *counted = PyObject_CallNoArgs(incr);
    if (counted == NULL) {
        goto error;
    }
    Py_DECREF(counted);
    thread = thread_name_of_caller(self);
    if (thread == NULL) {
        goto error;
    }
    long gave_up = fused_turn(self, kind, data, mode);
    if (gave_up >= 0 && event_tail(&tail, kind, thread, span, parent) == 0) {
        /* The plain case: redacted and encoded in one walk (DictWalk.encode), no tuple. */
        PyObject *argv[2] = {self->redactor, data};
        payload = PyObject_Vectorcall(self->fused, argv, 2, NULL);
        if (payload == NULL) {
            PyErr_Clear();
        }
        else if (!PyBytes_CheckExact(payload) || PyBytes_GET_SIZE(payload) + tail.len + 19 > self->max_event) {
            Py_CLEAR(payload); /* not the plain case, or too big: the usual path cuts it */
        }
        else if (gave_up > 0 && set_misses(self, kind, gave_up + 1) < 0) {
            PyErr_Clear(); /* (only the cache's schedule would drift) */
        }
    }
    if (payload == NULL && self->redacted != NULL) {
        PyObject *redacted = (mode == FRESH && self->redact != NULL) ? redact_direct(self, data)
                             : self->cache_misses != NULL ? redact_payload(self, data, kind)
                                                          : PyObject_CallFunctionObjArgs(self->redacted, data, kind, NULL);
        if (redacted == NULL) {
            goto error;
        }
        Py_SETREF(data, redacted);
    }
    int prepared = 0;
    for (;;) {
        got = PyObject_CallNoArgs(self->acquire);
        if (got == NULL) {
            goto error;
        }
        Py_CLEAR(got);
        locked = 1;

        PyObject *closed = PyObject_GetAttr(self->rec, str_closed);
        if (closed == NULL) {
            goto error;
        }
        int is_closed = PyObject_IsTrue(closed);
        Py_DECREF(closed);
        if (is_closed) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        PyObject *prev = PyObject_GetAttr(self->rec, str_seq);
        if (prev == NULL) {
            goto error;
        }
        long long seq = PyLong_AsLongLong(prev);
        Py_DECREF(prev);
        if (seq == -1 && PyErr_Occurred()) {
            goto error;
        }
        seq += 1;
        Py_XSETREF(seq_obj, PyLong_FromLongLong(seq));
        if (ts_obj == NULL) {
            ts_obj = PyLong_FromLongLong(ts);
        }
        if (seq_obj == NULL || ts_obj == NULL) {
            goto error;
        }
        if (payload != NULL) {
            if (commit_encoded(self, &tail, payload, seq_obj, seq, ts_obj, ts) < 0) {
                goto error;
            }
            result = Py_NewRef(seq_obj);
            goto done;
        }
        Py_XSETREF(tuple, PyTuple_Pack(7, seq_obj, ts_obj, kind, thread, span, parent, data));
        if (tuple == NULL) {
            goto error;
        }
        event = PyObject_CallOneArg(self->encode, tuple);
        if (event == NULL && !prepared) {
            /* The plain encoder refused the data (a type it does not know, a huge int...).
             * Converting it runs the agent's code (model_dump, __repr__), which may record in
             * turn: so without the lock, which is not reentrant; then again from the top. */
            PyErr_Clear();
            locked = 0;
            PyObject *r = PyObject_CallNoArgs(self->release);
            if (r == NULL) {
                goto error;
            }
            Py_DECREF(r);
            PyObject *ready = PyObject_CallFunctionObjArgs(self->prepare, data, kind, thread, NULL);
            if (ready == NULL) {
                goto error;
            }
            Py_SETREF(data, ready);
            prepared = 1;
            continue;
        }
        if (event == NULL || !PyBytes_CheckExact(event) || PyBytes_GET_SIZE(event) > self->max_event) {
            /* still unencodable, or too big: the sanitizing encoder (never raises) */
            PyErr_Clear();
            Py_XDECREF(event);
            event = PyObject_CallFunctionObjArgs(self->encode_safe, seq_obj, ts_obj, kind, thread, span, parent,
                                                 data, NULL);
            if (event == NULL || !PyBytes_CheckExact(event)) {
                goto error;
            }
        }
        if (commit_event(self, event, seq_obj, seq, ts_obj, ts) < 0) {
            goto error;
        }
        result = Py_NewRef(seq_obj);
        goto done;
    }

error:
    count_error(self);
    result = Py_NewRef(Py_None);
done:
    if (locked) {
        PyObject *r = PyObject_CallNoArgs(self->release);
        if (r == NULL) {
            PyErr_Clear();
        }
        Py_XDECREF(r);
    }
    PyErr_Clear();
    Py_XDECREF(ctx);
    Py_XDECREF(thread);
    Py_XDECREF(event);
    Py_XDECREF(seq_obj);
    Py_XDECREF(ts_obj);
    Py_XDECREF(tuple);
    Py_XDECREF(payload);
    Py_DECREF(data);
    return result;
}

/* Recorder.record(kind, data, pin=False, is_error=False): pinned events and errors take
 * the Python path (they bypass the sampler's fast table and may write the pinned area). */
static PyObject *
Fast_record(Fast *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (kwnames != NULL || nargs < 2 || nargs > 4) {
        /* pin= or is_error= by keyword (or a wrong call, which the method reports): Python */
        PyObject *r = PyObject_Vectorcall(self->slow, args, (size_t)nargs, kwnames);
        if (r == NULL) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                return NULL; /* a programming error of the caller: say so, as the method does */
            }
            count_error(self);
            Py_RETURN_NONE;
        }
        return r;
    }
    if (nargs > 2) {
        int special = PyObject_IsTrue(args[2]);
        if (special == 0 && nargs == 4) {
            special = PyObject_IsTrue(args[3]);
        }
        if (special != 0) {
            PyErr_Clear();
            PyObject *r = PyObject_Vectorcall(self->slow, args, (size_t)nargs, NULL);
            if (r == NULL) {
                count_error(self);
                Py_RETURN_NONE;
            }
            return r;
        }
    }
    return fast_record(self, args[0], args[1], REDACT);
}

/* Recorder.record_fresh(kind, data): a payload that never repeats (see fast_record). */
static PyObject *
Fast_record_fresh(Fast *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "record_fresh(kind, data)");
        return NULL;
    }
    return fast_record(self, args[0], args[1], FRESH);
}

/* Recorder.append_locked(kind, data, span=None, parent=None): append an event that is
 * redacted already, bypassing sampling, with the lock held by the caller (flush listeners,
 * the checkpoint store). Raises as the Python method does; never runs the agent's code
 * (data the plain encoder refuses goes to the sanitizing encoder, as in Python). */
static PyObject *
Fast_append_locked(Fast *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "append_locked(kind, data, span=None, parent=None)");
        return NULL;
    }
    PyObject *kind = args[0], *data = args[1];
    PyObject *span = nargs > 2 ? args[2] : Py_None, *parent = nargs > 3 ? args[3] : Py_None;
    struct timespec tsp;
    clock_gettime(CLOCK_REALTIME, &tsp);
    long long ts = (long long)tsp.tv_sec * 1000000000LL + tsp.tv_nsec;
    PyObject *thread = NULL, *seq_obj = NULL, *ts_obj = NULL, *tuple = NULL, *event = NULL, *result = NULL;
    thread = PyObject_GetAttr(self->tls, str_name);
    if (thread == NULL) {
        PyErr_Clear();
        thread = PyObject_CallNoArgs(self->thread_name);
        if (thread == NULL) {
            return NULL;
        }
    }
    PyObject *prev = PyObject_GetAttr(self->rec, str_seq);
    if (prev == NULL) {
        goto done;
    }
    long long seq = PyLong_AsLongLong(prev);
    Py_DECREF(prev);
    if (seq == -1 && PyErr_Occurred()) {
        goto done;
    }
    seq += 1;
    seq_obj = PyLong_FromLongLong(seq);
    ts_obj = PyLong_FromLongLong(ts);
    if (seq_obj == NULL || ts_obj == NULL) {
        goto done;
    }
    tuple = PyTuple_Pack(7, seq_obj, ts_obj, kind, thread, span, parent, data);
    if (tuple == NULL) {
        goto done;
    }
    event = PyObject_CallOneArg(self->encode, tuple);
    if (event == NULL || !PyBytes_CheckExact(event) || PyBytes_GET_SIZE(event) > self->max_event) {
        PyErr_Clear();
        Py_XDECREF(event);
        event = PyObject_CallFunctionObjArgs(self->encode_safe, seq_obj, ts_obj, kind, thread, span, parent, data,
                                             NULL);
        if (event == NULL) {
            goto done;
        }
        if (!PyBytes_CheckExact(event)) {
            PyErr_SetString(PyExc_TypeError, "the encoder returned no bytes");
            goto done;
        }
    }
    if (commit_event(self, event, seq_obj, seq, ts_obj, ts) < 0) {
        goto done;
    }
    result = Py_NewRef(seq_obj);
done:
    Py_XDECREF(thread);
    Py_XDECREF(seq_obj);
    Py_XDECREF(ts_obj);
    Py_XDECREF(tuple);
    Py_XDECREF(event);
    return result;
}

static PyObject *
Fast_release(Fast *self, PyObject *Py_UNUSED(ignored))
{
    release_buffer(self);
    Py_RETURN_NONE;
}

static PyMethodDef Fast_methods[] = {
    {"record", (PyCFunction)(void (*)(void))Fast_record, METH_FASTCALL | METH_KEYWORDS,
     "record($self, kind, data, pin=False, is_error=False)\n--\n\n"
     "Recorder.record, in C when it can: the event's seq, or None if it was dropped."},
    {"record_fresh", (PyCFunction)(void (*)(void))Fast_record_fresh, METH_FASTCALL,
     "record_fresh($self, kind, data, /)\n--\n\n"
     "Recorder.record_fresh: record data that never repeats (no payload cache); the seq, or None."},
    {"append_locked", (PyCFunction)(void (*)(void))Fast_append_locked, METH_FASTCALL,
     "append_locked($self, kind, data, span=None, parent=None, /)\n--\n\n"
     "Recorder.append_locked: append a redacted event, unsampled, the lock held; its seq."},
    {"release", (PyCFunction)Fast_release, METH_NOARGS, "Let go of the map (before it is closed)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FastType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "flightrec._fastpath.Fast",
    .tp_basicsize = sizeof(Fast),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The common case of one recorder's record(), in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Fast_init,
    .tp_dealloc = (destructor)Fast_dealloc,
    .tp_traverse = (traverseproc)Fast_traverse,
    .tp_clear = (inquiry)Fast_clear,
    .tp_methods = Fast_methods,
};

/* ---------------------------------------------------------------- tool calls */

/*
 * Tool(fn, name, names, name_set, slow): the common case of a @flightrec.tool call.
 *
 * agent._wrap makes one per decorated (sync) function and its wrapper calls
 * ``tool(args, kwargs)``. The common case is a recorder with a C fast path, a plain
 * signature bound by name (no *args, **kwargs, self or cls), no failed call that a retry
 * could repeat, a tool that returns normally without tool_error(), and a result within
 * the stored limits: it records the same tool_call and tool_result events as agent._begin
 * and agent._end, through fast_record. Everything else goes to ``slow(args, kwargs)``,
 * the Python path, before anything was recorded; an exception of the tool (or a marked
 * call, or a result to cut) goes to agent._end with the call already begun, as the
 * Python path does. A failure of the recorder is counted, never raised into the agent.
 */

/* Set once by configure_tools() from flightrec/agent.py. */
static PyObject *t_failed, *t_call_ids, *t_call_type, *t_current_call, *t_last_call, *t_span_var, *t_perf_ns,
    *t_end;
static PyObject *str_t0, *str_marked, *str_tool, *str_call_id, *str_args, *str_attempt, *str_latency,
    *str_result, *str_kind_call, *str_kind_result;

typedef struct {
    PyObject_HEAD
    PyObject *fn;
    PyObject *name;
    PyObject *names;    /* tuple of parameter names, or None: always the slow path */
    PyObject *name_set; /* frozenset of them */
    PyObject *slow;     /* slow(args, kwargs): the Python path */
} Tool;

static int
Tool_traverse(Tool *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fn);
    Py_VISIT(self->name);
    Py_VISIT(self->names);
    Py_VISIT(self->name_set);
    Py_VISIT(self->slow);
    return 0;
}

static int
Tool_clear(Tool *self)
{
    Py_CLEAR(self->fn);
    Py_CLEAR(self->name);
    Py_CLEAR(self->names);
    Py_CLEAR(self->name_set);
    Py_CLEAR(self->slow);
    return 0;
}

static void
Tool_dealloc(Tool *self)
{
    PyObject_GC_UnTrack(self);
    Tool_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Tool_init(Tool *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fn", "name", "names", "name_set", "slow", NULL};
    PyObject *fn, *name, *names, *name_set, *slow;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OUOOO", kwlist, &fn, &name, &names, &name_set, &slow)) {
        return -1;
    }
    if (names != Py_None && (!PyTuple_CheckExact(names) || !PyFrozenSet_CheckExact(name_set))) {
        PyErr_SetString(PyExc_TypeError, "names: a tuple (or None), name_set: a frozenset");
        return -1;
    }
    Tool_clear(self);
    self->fn = Py_NewRef(fn);
    self->name = Py_NewRef(name);
    self->names = Py_NewRef(names);
    self->name_set = Py_NewRef(name_set);
    self->slow = Py_NewRef(slow);
    return 0;
}

/* agent._ms_since(t0): ((perf_counter_ns() - t0 + 500) // 1000) / 1000, the milliseconds
 * since t0 to the microsecond (integer rounding: round(x, 3) formats the float, ~5x dearer). */
static PyObject *
ms_since(PyObject *t0)
{
    PyObject *now = PyObject_CallNoArgs(t_perf_ns);
    if (now == NULL) {
        return NULL;
    }
    long long a = PyLong_AsLongLong(now), b = PyLong_AsLongLong(t0);
    Py_DECREF(now);
    if ((a == -1 || b == -1) && PyErr_Occurred()) {
        return NULL;
    }
    long long n = a - b + 500; /* (a monotonic clock: no overflow for any real t0) */
    long long us = n >= 0 ? n / 1000 : -((-n + 999) / 1000); /* floor division, as Python's // */
    return PyFloat_FromDouble((double)us / 1000.0);
}

static PyObject *
call_tool_plain(Tool *self, PyObject *args, PyObject *kwargs)
{
    return PyObject_Call(self->fn, args, PyDict_GET_SIZE(kwargs) ? kwargs : NULL);
}

/* The arguments named as _Binder names them, or NULL (no error set) when this call is not
 * the plain case. */
static PyObject *
bind_plain(Tool *self, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t nargs = PyTuple_GET_SIZE(args), nnames = PyTuple_GET_SIZE(self->names);
    if (nargs > nnames) {
        return NULL;
    }
    PyObject *bound = PyDict_New();
    if (bound == NULL) {
        PyErr_Clear();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        if (PyDict_SetItem(bound, PyTuple_GET_ITEM(self->names, i), PyTuple_GET_ITEM(args, i)) < 0) {
            goto fail;
        }
    }
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(kwargs, &pos, &k, &v)) {
        int known = PySet_Contains(self->name_set, k);
        if (known <= 0) {
            goto fail; /* an unknown keyword: bind() reports it (as args/kwargs) */
        }
        int dup = PyDict_Contains(bound, k);
        if (dup != 0) {
            goto fail; /* given twice: the call will raise TypeError */
        }
        if (PyDict_SetItem(bound, k, v) < 0) {
            goto fail;
        }
    }
    return bound;
fail:
    PyErr_Clear();
    Py_DECREF(bound);
    return NULL;
}

/* Python's agent._end(rec, call, token, result, exc); its errors are its own (it counts them). */
static void
end_in_python(Fast *fast, PyObject *call, PyObject *token, PyObject *result, PyObject *exc)
{
    PyObject *argv[5] = {fast->rec, call, token, result, exc};
    PyObject *r = PyObject_Vectorcall(t_end, argv, 5, NULL);
    if (r == NULL) {
        count_error(fast);
    }
    Py_XDECREF(r);
}

/* Where agent._Call keeps each of its slots (set by configure_tools). */
enum { C_TOOL, C_CALL_ID, C_KEY, C_ATTEMPT, C_STEP, C_ARGS, C_MARKED, C_T0, C_NSLOTS };
static const char *call_slot_names[C_NSLOTS] = {"tool", "call_id", "key", "attempt", "step", "args", "marked", "t0"};
static Py_ssize_t call_slots[C_NSLOTS];

/* _Call(tool, call_id, None, 1, step, args), its slots filled here rather than by its
 * __init__ (a Python frame fewer per call); t0 is None until the caller sets it, before the
 * call is published. A new reference, or NULL with an error set. */
static PyObject *
new_call(PyObject *tool, PyObject *call_id, PyObject *step, PyObject *args)
{
    PyTypeObject *type = (PyTypeObject *)t_call_type;
    PyObject *call = type->tp_alloc(type, 0);
    if (call == NULL) {
        return NULL;
    }
    PyObject *values[C_NSLOTS] = {tool, call_id, Py_None, one, step, args, Py_None, Py_None};
    for (int i = 0; i < C_NSLOTS; i++) {
        SLOT(call, call_slots[i]) = Py_NewRef(values[i]);
    }
    return call;
}

static PyObject *
Tool_vectorcall(PyObject *op, PyObject *const *argv, size_t nargsf, PyObject *kwnames)
{
    Tool *self = (Tool *)op;
    if (PyVectorcall_NARGS(nargsf) != 2 || kwnames != NULL || !PyTuple_CheckExact(argv[0]) ||
        !PyDict_CheckExact(argv[1])) {
        PyErr_SetString(PyExc_TypeError, "Tool(args: tuple, kwargs: dict)");
        return NULL;
    }
    PyObject *args = argv[0], *kwargs = argv[1];
    if (t_end == NULL || active == NULL || self->names == Py_None || PyDict_GET_SIZE(t_failed) != 0) {
        if (active == NULL && fallback == NULL) {
            return call_tool_plain(self, args, kwargs); /* not recording */
        }
        return PyObject_CallFunctionObjArgs(self->slow, args, kwargs, NULL);
    }
    PyObject *bound = bind_plain(self, args, kwargs);
    if (bound == NULL) {
        return PyObject_CallFunctionObjArgs(self->slow, args, kwargs, NULL);
    }
    /* Own the recorder for the whole call: the tool may stop it (and start another). */
    Fast *fast = (Fast *)Py_NewRef(active);
    PyObject *call = NULL, *token = NULL, *call_id = NULL, *result = NULL, *data = NULL, *seq = NULL;
    PyObject *ctx = NULL, *t0 = NULL;
    call_id = PyIter_Next(t_call_ids);
    if (call_id == NULL || PyContextVar_Get(t_span_var, NULL, &ctx) < 0) {
        goto begin_failed;
    }
    PyObject *step = (ctx != NULL && PyTuple_Check(ctx) && PyTuple_GET_SIZE(ctx) == 2) ? PyTuple_GET_ITEM(ctx, 0)
                                                                                      : Py_None;
    call = new_call(self->name, call_id, step, bound);
    if (call == NULL) {
        goto begin_failed;
    }
    data = PyDict_New();
    if (data == NULL || PyDict_SetItem(data, str_tool, self->name) < 0 ||
        PyDict_SetItem(data, str_call_id, call_id) < 0 || PyDict_SetItem(data, str_args, bound) < 0 ||
        PyDict_SetItem(data, str_attempt, one) < 0) {
        goto begin_failed;
    }
    seq = fast_record(fast, str_kind_call, data, FRESH);
    Py_CLEAR(seq);
    Py_CLEAR(data);
    t0 = PyObject_CallNoArgs(t_perf_ns); /* after the record: its cost is not the tool's latency */
    if (t0 == NULL || PyObject_SetAttr(call, str_t0, t0) < 0) {
        goto begin_failed;
    }
    token = PyContextVar_Set(t_current_call, call);
    if (token == NULL) {
        goto begin_failed;
    }

    result = call_tool_plain(self, args, kwargs);
    if (result == NULL) {
        /* the tool raised: agent._end records it (origin, payload...), then it propagates */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        if (ev != NULL && etb != NULL) {
            PyException_SetTraceback(ev, etb);
        }
        end_in_python(fast, call, token, Py_None, ev != NULL ? ev : Py_None);
        PyErr_Restore(et, ev, etb);
        goto done;
    }
    /* Marked by tool_error(), a failed call to forget, or a result to cut: agent._end. */
    PyObject *marked = PyObject_GetAttr(call, str_marked);
    if (marked == NULL) {
        count_error(fast);
        goto done;
    }
    int unusual = marked != Py_None || PyDict_GET_SIZE(t_failed) != 0;
    Py_DECREF(marked);
    if (!unusual) {
        if (PyUnicode_Check(result)) {
            unusual = PyUnicode_GET_LENGTH(result) > fast->max_value;
        }
        else if (PyBytes_Check(result) || PyByteArray_Check(result)) {
            unusual = PyObject_Length(result) > fast->max_value;
        }
        else if (PyList_Check(result) || PyTuple_Check(result) || PyDict_Check(result)) {
            unusual = PyObject_Length(result) > 100; /* agent.RESULT_ITEMS */
        }
    }
    if (unusual) {
        end_in_python(fast, call, token, result, Py_None);
        goto done;
    }
    if (PyContextVar_Reset(t_current_call, token) < 0) {
        PyErr_Clear(); /* exited in another context: as agent._end does */
        PyObject *r = PyContextVar_Set(t_current_call, Py_None);
        Py_XDECREF(r);
        PyErr_Clear();
    }
    PyObject *latency = ms_since(t0);
    if (latency == NULL) {
        count_error(fast);
        goto done;
    }
    data = PyDict_New();
    int bad = data == NULL || PyDict_SetItem(data, str_tool, self->name) < 0 ||
              PyDict_SetItem(data, str_call_id, call_id) < 0 || PyDict_SetItem(data, str_latency, latency) < 0 ||
              PyDict_SetItem(data, str_result, result) < 0;
    Py_DECREF(latency);
    if (bad) {
        count_error(fast);
        goto done;
    }
    PyObject *last = PyTuple_Pack(2, call_id, self->name);
    PyObject *ltok = last != NULL ? PyContextVar_Set(t_last_call, last) : NULL;
    Py_XDECREF(last);
    if (ltok == NULL) {
        count_error(fast);
        goto done;
    }
    Py_DECREF(ltok);
    seq = fast_record(fast, str_kind_result, data, FRESH);
    goto done;

begin_failed:
    /* as agent._begin: count it, and run the tool unrecorded */
    count_error(fast);
    Py_CLEAR(token);
    result = call_tool_plain(self, args, kwargs);
done:
    Py_XDECREF(seq);
    Py_XDECREF(data);
    Py_XDECREF(t0);
    Py_XDECREF(ctx);
    Py_XDECREF(token);
    Py_XDECREF(call);
    Py_XDECREF(call_id);
    Py_DECREF(bound);
    Py_DECREF(fast);
    return result;
}

static PyObject *
Tool_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "Tool(args: tuple, kwargs: dict)");
        return NULL;
    }
    return Tool_vectorcall(self, &PyTuple_GET_ITEM(args, 0), (size_t)PyTuple_GET_SIZE(args), NULL);
}

static PyTypeObject ToolType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "flightrec._fastpath.Tool",
    .tp_basicsize = sizeof(Tool),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Tool(fn, name, names, name_set, slow)(args, kwargs): one @flightrec.tool call, in C when it can.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Tool_init,
    .tp_dealloc = (destructor)Tool_dealloc,
    .tp_traverse = (traverseproc)Tool_traverse,
    .tp_clear = (inquiry)Tool_clear,
    .tp_call = Tool_call,
};

/* configure_tools(failed, call_ids, call_type, current_call, last_call, span_var, perf_ns, round, end) */
static PyObject *
mod_configure_tools(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8 || !PyDict_Check(args[0]) || !PyContextVar_CheckExact(args[3]) ||
        !PyContextVar_CheckExact(args[4]) || !PyContextVar_CheckExact(args[5])) {
        PyErr_SetString(PyExc_TypeError, "configure_tools(failed, call_ids, call_type, current_call, last_call, "
                                         "span_var, perf_ns, end)");
        return NULL;
    }
    Py_ssize_t offsets[C_NSLOTS];
    for (int i = 0; i < C_NSLOTS; i++) {
        if (!PyType_Check(args[2]) || (offsets[i] = slot_offset(args[2], call_slot_names[i])) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "call_type: a class with the slots of agent._Call");
            }
            return NULL;
        }
    }
    memcpy(call_slots, offsets, sizeof(offsets));
    PyObject **slots[8] = {&t_failed, &t_call_ids, &t_call_type, &t_current_call, &t_last_call,
                           &t_span_var, &t_perf_ns, &t_end};
    for (int i = 0; i < 8; i++) {
        Py_XSETREF(*slots[i], Py_NewRef(args[i]));
    }
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- steps */

/*
 * step_enter(step) and step_exit(step, exc_type, exc, tb): agent.step's __enter__ and
 * __exit__ in C for the common case (a recorder with a C fast path, a step left without an
 * exception), installed on the class with as_method(). They read and write the step's own
 * slots and record the same step_start and step_end events as agent.step._enter_python and
 * _exit_python, which get every other case (no fast path, an exception, a step exited in
 * another context). A failure of the recorder is counted, never raised into the agent.
 */

static PyObject *s_span_ids, *s_enter_py, *s_exit_py, *s_restore_span, *s_exited_early, *s_skip_exited, *s_open_steps;
#define OPEN_STEPS_MAX (1 << 16) /* as agent._OPEN_STEPS_MAX */
static PyObject *str_s_name, *str_s_attrs, *str_s_token, *str_s_id, *str_s_rec, *str_s_t0, *str_fast_attr,
    *str_duration, *str_kind_step_start, *str_kind_step_end;

static PyObject *
step_enter(PyObject *module, PyObject *self)
{
    if (s_enter_py == NULL || active == NULL) {
        if (s_enter_py == NULL || fallback == NULL) {
            return Py_NewRef(self); /* not recording */
        }
        return PyObject_CallOneArg(s_enter_py, self);
    }
    Fast *fast = (Fast *)Py_NewRef(active);
    PyObject *outer = NULL, *sid = NULL, *pair = NULL, *token = NULL, *t0 = NULL, *name = NULL, *attrs = NULL;
    PyObject *data = NULL;
    if (PyContextVar_Get(t_span_var, NULL, &outer) < 0 || (sid = PyIter_Next(s_span_ids)) == NULL) {
        goto fail;
    }
    PyObject *parent = (outer != NULL && PyTuple_Check(outer) && PyTuple_GET_SIZE(outer) == 2)
                           ? PyTuple_GET_ITEM(outer, 0)
                           : Py_None;
    if ((pair = PyTuple_Pack(2, sid, parent)) == NULL || (token = PyContextVar_Set(t_span_var, pair)) == NULL ||
        PyObject_SetAttr(self, str_s_token, token) < 0 || PyObject_SetAttr(self, str_s_id, sid) < 0 ||
        PyObject_SetAttr(self, str_s_rec, fast->rec) < 0 || (t0 = PyObject_CallNoArgs(t_perf_ns)) == NULL ||
        PyObject_SetAttr(self, str_s_t0, t0) < 0 || (name = PyObject_GetAttr(self, str_s_name)) == NULL ||
        (attrs = PyObject_GetAttr(self, str_s_attrs)) == NULL || (data = PyDict_New()) == NULL ||
        PyDict_SetItem(data, str_s_name, name) < 0 || PyDict_SetItem(data, str_s_attrs, attrs) < 0) {
        goto fail;
    }
    if (PyAnySet_Check(s_open_steps)) { /* agent._open_step */
        if (PySet_GET_SIZE(s_open_steps) >= OPEN_STEPS_MAX && PySet_Clear(s_open_steps) < 0) {
            goto fail;
        }
        if (PySet_Add(s_open_steps, sid) < 0) {
            goto fail;
        }
    }
    PyObject *seq = fast_record(fast, str_kind_step_start, data, REDACT);
    Py_DECREF(seq);
    goto done;
fail:
    count_error(fast);
done:
    Py_XDECREF(outer);
    Py_XDECREF(sid);
    Py_XDECREF(pair);
    Py_XDECREF(token);
    Py_XDECREF(t0);
    Py_XDECREF(name);
    Py_XDECREF(attrs);
    Py_XDECREF(data);
    Py_DECREF(fast);
    return Py_NewRef(self);
}

/* 1 if the current span is the step's own (``sid``, its _id: it is left in order, the usual
 * case), 0 if not, -1 (no error set) if that cannot be told. */
static int
step_in_order(PyObject *sid)
{
    PyObject *current = NULL;
    if (sid == NULL || PyContextVar_Get(t_span_var, NULL, &current) < 0) {
        PyErr_Clear();
        return -1;
    }
    int same = 0;
    if (current != NULL && PyTuple_Check(current) && PyTuple_GET_SIZE(current) == 2) {
        PyObject *id = PyTuple_GET_ITEM(current, 0);
        same = id == sid ? 1 : PyObject_RichCompareBool(id, sid, Py_EQ);
        if (same < 0) {
            PyErr_Clear();
        }
    }
    Py_XDECREF(current);
    return same;
}

static PyObject *
step_exit(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "step_exit(step, exc_type, exc, tb)");
        return NULL;
    }
    PyObject *self = args[0], *exc = args[2];
    if (s_exit_py == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *rec = PyObject_GetAttr(self, str_s_rec);
    if (rec == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (rec == Py_None) {
        Py_DECREF(rec);
        Py_RETURN_NONE; /* not entered while recording */
    }
    PyObject *fast = exc == Py_None ? PyObject_GetAttr(rec, str_fast_attr) : NULL;
    Py_DECREF(rec);
    PyObject *sid = fast != NULL ? PyObject_GetAttr(self, str_s_id) : NULL; /* (read once: the check, the discard) */
    if (fast != NULL && step_in_order(sid) != 1) {
        Py_CLEAR(fast); /* left out of order (or cannot tell): the Python method sorts it out */
    }
    if (fast == NULL || !PyObject_TypeCheck(fast, &FastType)) {
        /* an exception to record, or a recorder without a C path: the Python method */
        PyErr_Clear();
        Py_XDECREF(fast);
        Py_XDECREF(sid);
        return PyObject_Vectorcall(s_exit_py, args, 4, NULL);
    }
    PyObject *t0 = NULL, *duration = NULL, *name = NULL, *data = NULL;
    PyObject *token = NULL;
    if (PyObject_SetAttr(self, str_s_rec, Py_None) < 0) {
        Py_XDECREF(sid);
        goto fail;
    }
    if (sid == NULL || (PyAnySet_Check(s_open_steps) && PySet_Discard(s_open_steps, sid) < 0)) {
        PyErr_Clear();
        count_error((Fast *)fast);
    }
    Py_XDECREF(sid);
    if ((t0 = PyObject_GetAttr(self, str_s_t0)) == NULL || (duration = ms_since(t0)) == NULL ||
        (name = PyObject_GetAttr(self, str_s_name)) == NULL || (data = PyDict_New()) == NULL ||
        PyDict_SetItem(data, str_s_name, name) < 0 || PyDict_SetItem(data, str_duration, duration) < 0) {
        count_error((Fast *)fast);
    }
    else {
        PyObject *seq = fast_record((Fast *)fast, str_kind_step_end, data, FRESH);
        Py_DECREF(seq);
    }
    goto reset;
fail:
    count_error((Fast *)fast);
reset:
    /* finally: the step's span is left, whatever happened above */
    token = PyObject_GetAttr(self, str_s_token);
    if (token == NULL) {
        PyErr_Clear();
    }
    else if (token != Py_None) {
        if (PyObject_SetAttr(self, str_s_token, Py_None) < 0) {
            PyErr_Clear();
        }
        if (PyContextVar_Reset(t_span_var, token) < 0) {
            PyErr_Clear(); /* exited in another context than entered: restore by value, as Python does */
            PyObject *r = PyObject_CallOneArg(s_restore_span, token);
            if (r == NULL) {
                count_error((Fast *)fast);
            }
            Py_XDECREF(r);
        }
        if (s_exited_early != NULL && PyDict_Check(s_exited_early) && PyDict_GET_SIZE(s_exited_early) > 0) {
            PyObject *r = PyObject_CallNoArgs(s_skip_exited); /* (see agent._skip_exited) */
            if (r == NULL) {
                count_error((Fast *)fast);
            }
            Py_XDECREF(r);
        }
    }
    Py_XDECREF(token);
    Py_XDECREF(t0);
    Py_XDECREF(duration);
    Py_XDECREF(name);
    Py_XDECREF(data);
    Py_DECREF(fast);
    Py_RETURN_NONE;
}

/* configure_steps(span_ids, enter_py, exit_py, restore_span, exited_early, skip_exited, open_steps) */
static PyObject *
mod_configure_steps(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "configure_steps(span_ids, enter_py, exit_py, restore_span, exited_early, "
                                         "skip_exited, open_steps)");
        return NULL;
    }
    if (t_span_var == NULL || t_perf_ns == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_tools() first");
        return NULL;
    }
    PyObject **slots[7] = {&s_span_ids,     &s_enter_py,    &s_exit_py,  &s_restore_span,
                           &s_exited_early, &s_skip_exited, &s_open_steps};
    for (int i = 0; i < 7; i++) {
        Py_XSETREF(*slots[i], Py_NewRef(args[i]));
    }
    Py_RETURN_NONE;
}

/* as_method(fn): fn as a method of a Python class (bound to the instance, like a function). */
static PyObject *
mod_as_method(PyObject *module, PyObject *fn)
{
    return PyInstanceMethod_New(fn);
}

/* ---------------------------------------------------------------- module */

/* flightrec.record(kind, /, *, pin=False, **data) */
static PyObject *
mod_record(PyObject *module, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 1) {
        PyErr_Format(PyExc_TypeError, "record() takes 1 positional argument (kind) but %zd were given",
                     PyTuple_GET_SIZE(args));
        return NULL;
    }
    /* Own a reference before anything else runs: an allocation below may run a finalizer
     * that stops the recorder (set_active(None)) and would free it under us. */
    PyObject *fast = Py_XNewRef(active);
    if (fast == NULL) {
        if (fallback != NULL) {
            PyObject *fb = Py_NewRef(fallback);
            PyObject *r = PyObject_Call(fb, args, kwargs);
            Py_DECREF(fb);
            return r;
        }
        Py_RETURN_NONE;
    }
    PyObject *kind = PyTuple_GET_ITEM(args, 0);
    PyObject *data = NULL;
    PyObject *pin = NULL;
    if (kwargs != NULL) {
        pin = PyDict_GetItemWithError(kwargs, str_pin); /* borrowed */
        if (pin == NULL && PyErr_Occurred()) {
            Py_DECREF(fast);
            return NULL;
        }
    }
    if (kwargs != NULL && pin == NULL) {
        data = Py_NewRef(kwargs);
    }
    else {
        /* a copy: the caller's dict is not ours to change (and may be shared) */
        Py_XINCREF(pin); /* the copy below may be the only other owner once we delete it */
        data = kwargs != NULL ? PyDict_Copy(kwargs) : PyDict_New();
        if (data == NULL || (pin != NULL && PyDict_DelItem(data, str_pin) < 0)) {
            Py_XDECREF(data);
            Py_XDECREF(pin);
            Py_DECREF(fast);
            return NULL;
        }
    }
    PyObject *result;
    if (pin != NULL) {
        PyObject *argv[3] = {kind, data, pin};
        result = Fast_record((Fast *)fast, argv, 3, NULL);
        Py_DECREF(pin);
    }
    else {
        result = fast_record((Fast *)fast, kind, data, REDACT);
    }
    Py_DECREF(fast);
    Py_DECREF(data);
    return result;
}

/* set_active(fast, fallback): the Fast that record() uses (or None), and the callable it
 * hands every call to when there is none (or None: not recording). */
static PyObject *
mod_set_active(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "set_active(fast, fallback)");
        return NULL;
    }
    PyObject *fast = args[0], *fb = args[1];
    if (fast != Py_None && !PyObject_TypeCheck(fast, &FastType)) {
        PyErr_SetString(PyExc_TypeError, "a Fast object or None");
        return NULL;
    }
    if (fb != Py_None && !PyCallable_Check(fb)) {
        PyErr_SetString(PyExc_TypeError, "fallback must be callable or None");
        return NULL;
    }
    PyObject *old = active, *old_fb = fallback;
    active = fast == Py_None ? NULL : Py_NewRef(fast);
    fallback = fb == Py_None ? NULL : Py_NewRef(fb);
    Py_XDECREF(old);
    Py_XDECREF(old_fb);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"record", (PyCFunction)(void (*)(void))mod_record, METH_VARARGS | METH_KEYWORDS,
     "record($module, kind, /, *, pin=False, **data)\n--\n\n"
     "Record one event of ``kind`` with arbitrary fields; its seq, or None when not recording\n"
     "or sampled out. The C twin of flightrec.api._python_record."},
    {"configure_tools", (PyCFunction)(void (*)(void))mod_configure_tools, METH_FASTCALL,
     "configure_tools(failed, call_ids, call_type, current_call, last_call, span_var, perf_ns, round, end):\n"
     "the objects of flightrec.agent that Tool calls share with the Python path."},
    {"configure_steps", (PyCFunction)(void (*)(void))mod_configure_steps, METH_FASTCALL,
     "configure_steps(span_ids, enter_py, exit_py, restore_span): what step_enter/step_exit share with agent.step."},
    {"step_enter", (PyCFunction)step_enter, METH_O, "step_enter(step): agent.step.__enter__ in C (see the source)."},
    {"step_exit", (PyCFunction)(void (*)(void))step_exit, METH_FASTCALL,
     "step_exit(step, exc_type, exc, tb): agent.step.__exit__ in C (see the source)."},
    {"as_method", (PyCFunction)mod_as_method, METH_O, "as_method(fn): fn bound to instances, as a method."},
    {"set_active", (PyCFunction)(void (*)(void))mod_set_active, METH_FASTCALL,
     "set_active(fast, fallback): the Fast flightrec.record() uses, else the callable it defers to."},
    {"forget_thread_name", (PyCFunction)mod_forget_thread_name, METH_NOARGS,
     "forget_thread_name(): a thread was renamed; the next event reads its thread name again."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "flightrec._fastpath", "The common case of Recorder.record(), in C.", -1,
    module_methods,
};

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    if (PyType_Ready(&FastType) < 0 || PyType_Ready(&ToolType) < 0) {
        return NULL;
    }
#define INTERN(var, text)                                 \
    if ((var = PyUnicode_InternFromString(text)) == NULL) { \
        return NULL;                                      \
    }
    INTERN(str_t0, "t0");
    INTERN(str_marked, "marked");
    INTERN(str_tool, "tool");
    INTERN(str_call_id, "call_id");
    INTERN(str_args, "args");
    INTERN(str_attempt, "attempt");
    INTERN(str_latency, "latency_ms");
    INTERN(str_result, "result");
    INTERN(str_kind_call, "tool_call");
    INTERN(str_kind_result, "tool_result");
    INTERN(str_s_name, "name");
    INTERN(str_s_attrs, "attrs");
    INTERN(str_s_token, "_token");
    INTERN(str_s_id, "_id");
    INTERN(str_s_rec, "_rec");
    INTERN(str_s_t0, "_t0");
    INTERN(str_fast_attr, "_fast");
    INTERN(str_duration, "duration_ms");
    INTERN(str_kind_step_start, "step_start");
    INTERN(str_kind_step_end, "step_end");
#undef INTERN
    str_seq = PyUnicode_InternFromString("_seq");
    str_closed = PyUnicode_InternFromString("closed");
    str_errors = PyUnicode_InternFromString("errors");
    str_name = PyUnicode_InternFromString("name");
    str_pin = PyUnicode_InternFromString("pin");
    one = PyLong_FromLong(1);
    zero = PyLong_FromLong(0);
    str_empty = PyUnicode_FromString("");
    if (!zero || !str_empty) {
        return NULL;
    }
    if (!str_seq || !str_closed || !str_errors || !str_name || !str_pin || !one) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&FastType);
    if (PyModule_AddObject(m, "Fast", (PyObject *)&FastType) < 0) {
        Py_DECREF(&FastType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&ToolType);
    if (PyModule_AddObject(m, "Tool", (PyObject *)&ToolType) < 0) {
        Py_DECREF(&ToolType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
