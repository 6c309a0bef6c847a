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
    PyObject *never_repeats; /* kinds whose payload never repeats (no payload cache): a frozenset, or NULL */
    PyObject *redact;       /* Redactor.redact (never raises), for those kinds */
    PyObject *dict_walk;    /* the C dict walk, called as redact() would call it, or NULL */
    PyObject *redactor;     /* its Redactor */
    PyObject *slow;         /* the Python Recorder.record(kind, data, pin, is_error, clean) */
    PyObject *ring_append;  /* RingWriter.append(event, seq, ts): flushes a full block */
    Py_ssize_t max_event;
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
    Py_VISIT(self->never_repeats);
    Py_VISIT(self->redact);
    Py_VISIT(self->dict_walk);
    Py_VISIT(self->redactor);
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
    Py_CLEAR(self->never_repeats);
    Py_CLEAR(self->redact);
    Py_CLEAR(self->dict_walk);
    Py_CLEAR(self->redactor);
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
                             "never_repeats", "redact", "dict_walk", "redactor", NULL};
    PyObject *rec, *ring, *fast, *span_var, *tls, *thread_name, *acquire, *release, *encode, *encode_safe,
        *prepare, *redacted, *slow, *mm;
    PyObject *never_repeats = Py_None, *redact = Py_None, *dict_walk = Py_None, *redactor = Py_None;
    Py_ssize_t max_event, len_field;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO!OOOOOOOOOOOnn|OOOO", kwlist, &rec, &ring, &PyDict_Type, &fast,
                                     &span_var, &tls, &thread_name, &acquire, &release, &encode, &encode_safe,
                                     &prepare, &redacted, &slow, &mm, &max_event, &len_field, &never_repeats,
                                     &redact, &dict_walk, &redactor)) {
        return -1;
    }
    if (never_repeats != Py_None && (!PyFrozenSet_CheckExact(never_repeats) || redact == Py_None)) {
        PyErr_SetString(PyExc_TypeError, "never_repeats: a frozenset, with redact");
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
        if (never_repeats != Py_None) {
            KEEP(never_repeats, never_repeats);
            KEEP(redact, redact);
            if (dict_walk != Py_None && redactor != Py_None) {
                KEEP(dict_walk, dict_walk);
                KEEP(redactor, redactor);
            }
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
append_event(Fast *self, PyObject *event, long long seq, long long ts)
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
    Py_ssize_t n = PyBytes_GET_SIZE(event);
    long long new_end = end + n;
    if (new_end > limit || last_seq == 0) {
        return 0; /* a flush first, or the very first event: the Python path handles both */
    }
    if (!self->has_buf || end < 0 || new_end > self->buf.len || self->len_field + 8 > self->buf.len) {
        PyErr_SetString(PyExc_ValueError, "event outside the map");
        return -1;
    }
    char *base = (char *)self->buf.buf;
    memcpy(base + end, PyBytes_AS_STRING(event), (size_t)n);
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

/* The fast path; a new reference (the seq, or None), never NULL. ``clean``: the caller
 * redacted ``data`` already (Recorder.record_clean). */
static PyObject *
fast_record(Fast *self, PyObject *kind, PyObject *data, int clean)
{
    PyObject *incr = PyDict_GetItemWithError(self->fast, kind); /* borrowed */
    if (incr == NULL) {
        if (PyErr_Occurred()) {
            PyErr_Clear();
        }
        /* a kind the sampler has to decide on: the Python path, from the start */
        PyObject *r = clean ? PyObject_CallFunctionObjArgs(self->slow, kind, data, Py_False, Py_False, Py_True, NULL)
                            : PyObject_CallFunctionObjArgs(self->slow, kind, data, NULL);
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
    if (self->redacted != NULL && !clean) {
        int direct = self->never_repeats != NULL ? PySet_Contains(self->never_repeats, kind) : 0;
        if (direct < 0) {
            goto error;
        }
        PyObject *redacted = direct ? redact_direct(self, data)
                                    : PyObject_CallFunctionObjArgs(self->redacted, data, kind, NULL);
        if (redacted == NULL) {
            goto error;
        }
        Py_SETREF(data, redacted);
    }
    thread = PyObject_GetAttr(self->tls, str_name);
    if (thread == NULL) {
        PyErr_Clear();
        thread = PyObject_CallNoArgs(self->thread_name);
        if (thread == NULL) {
            goto error;
        }
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
        if (PyObject_SetAttr(self->rec, str_seq, seq_obj) < 0) {
            goto error;
        }
        int written = append_event(self, event, seq, ts);
        if (written < 0) {
            goto error;
        }
        if (written == 0) {
            PyObject *r = PyObject_CallFunctionObjArgs(self->ring_append, event, seq_obj, ts_obj, NULL);
            if (r == NULL) {
                goto error;
            }
            Py_DECREF(r);
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
    return fast_record(self, args[0], args[1], 0);
}

/* Recorder.record_clean(kind, data): data the caller has redacted already. */
static PyObject *
Fast_record_clean(Fast *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "record_clean(kind, data)");
        return NULL;
    }
    return fast_record(self, args[0], args[1], 1);
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
    if (PyObject_SetAttr(self->rec, str_seq, seq_obj) < 0) {
        goto done;
    }
    int written = append_event(self, event, seq, ts);
    if (written < 0) {
        goto done;
    }
    if (written == 0) {
        PyObject *r = PyObject_CallFunctionObjArgs(self->ring_append, event, seq_obj, ts_obj, NULL);
        if (r == NULL) {
            goto done;
        }
        Py_DECREF(r);
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
    {"record_clean", (PyCFunction)(void (*)(void))Fast_record_clean, METH_FASTCALL,
     "record_clean($self, kind, data, /)\n--\n\n"
     "Recorder.record_clean: record data that is redacted already; the seq, or None."},
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
        result = fast_record((Fast *)fast, kind, data, 0);
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
    {"set_active", (PyCFunction)(void (*)(void))mod_set_active, METH_FASTCALL,
     "set_active(fast, fallback): the Fast flightrec.record() uses, else the callable it defers to."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "flightrec._fastpath", "The common case of Recorder.record(), in C.", -1,
    module_methods,
};

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    if (PyType_Ready(&FastType) < 0) {
        return NULL;
    }
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
    return m;
}
