/* flightrec._store: the checkpoint store's usual emission, in C.
 *
 * checkpoint.CheckpointStore._emit stores a checkpoint's new chunks and its event, and keeps
 * the bookkeeping that lets every checkpoint in the ring be rebuilt while it wraps. For the
 * usual checkpoint (a list that grew: its group already registered, a few new chunks, the
 * new root inline in the event) that is some 80 lines of Python, most of what a checkpoint
 * costs once the walker and the paging are quick. This is the same work in one call.
 *
 * emit(store, rec, root, chunks, groups, data, span, parent) -> seq | None | NotImplemented
 *     What _emit(root, chunks, groups, label, span, parent) returns, with ``data`` the
 *     event's fields so far (root, label) and no retired groups: under rec._lock, the same
 *     updates of the store, the same events in the same order. NotImplemented, having
 *     changed nothing, unless this is the usual case: every group already registered (one
 *     at most), at most 8 chunks, and no compression ratio to measure. The Python code then
 *     does it.
 *
 * Its Python twin is the code of _emit and _register it stands in for (tests run both on the
 * same checkpoints and compare every event and every piece of the store's state).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define CHUNK_OVERHEAD 64           /* checkpoint._CHUNK_OVERHEAD */
#define CHUNK_LIST_MAX 32           /* checkpoint._CHUNK_LIST_MAX */
#define PENDING ((long long)1 << 62) /* checkpoint._PENDING */
#define RATIO_EVERY 32              /* the ratio is measured on every 32nd checkpoint's new chunks */
#define SMALL_MAX 8                 /* _register's small path: at most this many chunks */

static PyObject *s_gen, *s_gen_seq, *s_gens, *s_groups, *s_gen_of, *s_ratio, *s_inline_max, *s_data, *s_csize,
    *s_seq_of, *s_heap, *s_bytes, *s_cbytes, *s_budget, *s_shrink, *s_chunks, *s_size, *s_used, *s_lock, *s_closed,
    *s_append, *s_acquire, *s_release, *s_kind_chunk, *s_kind_checkpoint, *s_hash, *s_new, *s_stored, *s_inline,
    *s_k_chunks, *s_k_size, *s_hex, *s_append_m, *s_data_key;
static PyObject *heappush;

static int
add_attr(PyObject *obj, PyObject *name, long long delta)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) {
        return -1;
    }
    long long n = PyLong_AsLongLong(v);
    Py_DECREF(v);
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    PyObject *w = PyLong_FromLongLong(n + delta);
    int rc = w != NULL ? PyObject_SetAttr(obj, name, w) : -1;
    Py_XDECREF(w);
    return rc;
}

static long long
ll_attr(PyObject *obj, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) {
        return -1;
    }
    long long n = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return n;
}

/* _copy_at(seq, h, blob, ratio): the chunk's copy noted at ``seq``; its estimated ring bytes,
 * or -1 with an error set. */
static long long
copy_at(PyObject *store, PyObject *seq, PyObject *h, PyObject *blob, double ratio)
{
    long long csize = (long long)((double)PyBytes_GET_SIZE(blob) * ratio) + CHUNK_OVERHEAD;
    PyObject *data = PyObject_GetAttr(store, s_data), *sizes = PyObject_GetAttr(store, s_csize);
    PyObject *seq_of = PyObject_GetAttr(store, s_seq_of), *heap = PyObject_GetAttr(store, s_heap);
    PyObject *cs = PyLong_FromLongLong(csize), *entry = PyTuple_Pack(2, seq, h);
    int bad = data == NULL || sizes == NULL || seq_of == NULL || heap == NULL || cs == NULL || entry == NULL ||
              PyObject_SetItem(data, h, blob) < 0 || PyObject_SetItem(sizes, h, cs) < 0 ||
              PyObject_SetItem(seq_of, h, seq) < 0;
    if (!bad) {
        PyObject *r = PyObject_CallFunctionObjArgs(heappush, heap, entry, NULL);
        bad = r == NULL;
        Py_XDECREF(r);
    }
    Py_XDECREF(data);
    Py_XDECREF(sizes);
    Py_XDECREF(seq_of);
    Py_XDECREF(heap);
    Py_XDECREF(cs);
    Py_XDECREF(entry);
    return bad ? -1 : csize;
}

/* Under the lock, before anything changes: whether this is the usual case; the group (or
 * None, borrowed) through *group. 1 yes, 0 no, -1 on error. */
static int
usual_case(PyObject *store, PyObject *chunks, PyObject *groups, long long gen, PyObject **group)
{
    *group = Py_None;
    if (PyDict_GET_SIZE(chunks) > SMALL_MAX || PyList_GET_SIZE(groups) > 1 || gen % RATIO_EVERY == 1) {
        return 0;
    }
    PyObject *ratio = PyObject_GetAttr(store, s_ratio);
    if (ratio == NULL) {
        return -1;
    }
    int measured = ratio != Py_None;
    Py_DECREF(ratio);
    if (!measured) {
        return 0;
    }
    if (PyList_GET_SIZE(groups) == 1) {
        PyObject *g = PyList_GET_ITEM(groups, 0), *known = PyObject_GetAttr(store, s_groups);
        if (known == NULL || !PyDict_CheckExact(known)) {
            Py_XDECREF(known);
            return PyErr_Occurred() ? -1 : 0;
        }
        PyObject *id = PyLong_FromVoidPtr(g);
        PyObject *there = id != NULL ? PyDict_GetItemWithError(known, id) : NULL; /* borrowed */
        Py_XDECREF(id);
        Py_DECREF(known);
        if (there != g) {
            return PyErr_Occurred() ? -1 : 0; /* not registered as a group yet: _register does it */
        }
        *group = g;
    }
    return 1;
}

/* The body of _emit once the lock is held and the case is the usual one. */
static PyObject *
emit_locked(PyObject *store, PyObject *rec, PyObject *root, PyObject *chunks, PyObject *group, PyObject *data,
            PyObject *span, PyObject *parent, long long gen)
{
    PyObject *gen_obj = NULL, *gen_seq = NULL, *gens = NULL, *gen_of = NULL, *held = NULL, *missing = NULL;
    PyObject *append = NULL, *new_hex = NULL, *seq = NULL, *result = NULL, *r = NULL, *inline_pair = NULL;
    long long stored = 0, cstored = 0;
    int bookkept = 0; /* whether the finally-part of _emit (bytes, undo) applies */

    gen_obj = PyLong_FromLongLong(gen);
    if (gen_obj == NULL || PyObject_SetAttr(store, s_gen, gen_obj) < 0) {
        goto done;
    }
    gen_seq = PyObject_GetAttr(store, s_gen_seq);
    gens = gen_seq != NULL ? PyObject_GetAttr(store, s_gens) : NULL;
    gen_of = gens != NULL ? PyObject_GetAttr(store, s_gen_of) : NULL;
    if (gen_of == NULL || !PyDict_CheckExact(gen_of)) {
        goto done_type;
    }
    PyObject *pending = PyLong_FromLongLong(PENDING);
    int bad = pending == NULL || PyObject_SetItem(gen_seq, gen_obj, pending) < 0;
    Py_XDECREF(pending);
    if (bad || (r = PyObject_CallMethodOneArg(gens, s_append_m, gen_obj)) == NULL) {
        goto done;
    }
    Py_CLEAR(r);

    /* _register, its small path: the group stands for its chunks; each chunk marked used */
    long long size = 0;
    if (group != Py_None) {
        long long gsize = ll_attr(group, s_size);
        if ((gsize == -1 && PyErr_Occurred()) || PyObject_SetAttr(group, s_used, gen_obj) < 0 ||
            (held = PyObject_GetAttr(group, s_chunks)) == NULL) {
            goto done;
        }
        size = gsize;
    }
    missing = PyList_New(0);
    if (missing == NULL) {
        goto done;
    }
    Py_ssize_t pos = 0;
    PyObject *h, *blob;
    while (PyDict_Next(chunks, &pos, &h, &blob)) { /* children before parents */
        if (!PyBytes_CheckExact(blob)) {
            PyErr_SetString(PyExc_TypeError, "chunk data is not bytes");
            goto done;
        }
        int known = PyDict_Contains(gen_of, h);
        int in_group = held != NULL ? PySequence_Contains(held, h) : 0;
        if (known < 0 || in_group < 0) {
            goto done;
        }
        if (!known) {
            PyObject *pair = PyTuple_Pack(2, h, blob);
            bad = pair == NULL || PyList_Append(missing, pair) < 0;
            Py_XDECREF(pair);
            if (bad) {
                goto done;
            }
        }
        if (!in_group) {
            size += PyBytes_GET_SIZE(blob);
        }
        if (PyDict_SetItem(gen_of, h, gen_obj) < 0) {
            goto done;
        }
    }
    PyObject *ratio_obj = PyObject_GetAttr(store, s_ratio);
    double ratio = ratio_obj != NULL ? PyFloat_AsDouble(ratio_obj) : -1.0;
    Py_XDECREF(ratio_obj);
    long long inline_max = ll_attr(store, s_inline_max);
    if ((ratio == -1.0 || inline_max == -1) && PyErr_Occurred()) {
        goto done;
    }
    Py_ssize_t nmissing = PyList_GET_SIZE(missing);
    if (nmissing) {
        PyObject *last = PyList_GET_ITEM(missing, nmissing - 1);
        int is_root = PyObject_RichCompareBool(PyTuple_GET_ITEM(last, 0), root, Py_EQ);
        if (is_root < 0) {
            goto done;
        }
        if (is_root && PyBytes_GET_SIZE(PyTuple_GET_ITEM(last, 1)) <= inline_max) {
            inline_pair = Py_NewRef(last); /* the new root travels inside the event */
            if (PyList_SetSlice(missing, nmissing - 1, nmissing, NULL) < 0) {
                goto done;
            }
            nmissing--;
        }
    }
    append = PyObject_GetAttr(rec, s_append);
    new_hex = append != NULL ? PyList_New(0) : NULL;
    if (new_hex == NULL) {
        goto done;
    }
    bookkept = 1;
    for (Py_ssize_t i = 0; i < nmissing; i++) {
        PyObject *pair = PyList_GET_ITEM(missing, i);
        PyObject *hx = PyObject_CallMethodNoArgs(PyTuple_GET_ITEM(pair, 0), s_hex);
        PyObject *fields = hx != NULL ? PyDict_New() : NULL;
        if (fields == NULL || PyDict_SetItem(fields, s_hash, hx) < 0 ||
            PyDict_SetItem(fields, s_data_key, PyTuple_GET_ITEM(pair, 1)) < 0) {
            Py_XDECREF(hx);
            Py_XDECREF(fields);
            goto done;
        }
        PyObject *cseq = PyObject_CallFunctionObjArgs(append, s_kind_chunk, fields, span, parent, NULL);
        Py_DECREF(fields);
        long long cs = cseq != NULL ? copy_at(store, cseq, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1), ratio)
                                    : -1;
        Py_XDECREF(cseq);
        if (cs < 0) {
            Py_DECREF(hx);
            goto done;
        }
        cstored += cs;
        stored += PyBytes_GET_SIZE(PyTuple_GET_ITEM(pair, 1));
        if (PyList_GET_SIZE(new_hex) < CHUNK_LIST_MAX && PyList_Append(new_hex, hx) < 0) {
            Py_DECREF(hx);
            goto done;
        }
        Py_DECREF(hx);
    }
    {
        PyObject *nnew = PyLong_FromSsize_t(nmissing + (inline_pair != NULL));
        PyObject *nsize = PyLong_FromLongLong(size);
        long long all_stored = stored + (inline_pair != NULL ? PyBytes_GET_SIZE(PyTuple_GET_ITEM(inline_pair, 1)) : 0);
        PyObject *nstored = PyLong_FromLongLong(all_stored);
        bad = nnew == NULL || nsize == NULL || nstored == NULL || PyDict_SetItem(data, s_k_chunks, new_hex) < 0 ||
              PyDict_SetItem(data, s_new, nnew) < 0 || PyDict_SetItem(data, s_k_size, nsize) < 0 ||
              PyDict_SetItem(data, s_stored, nstored) < 0 ||
              (inline_pair != NULL && PyDict_SetItem(data, s_inline, PyTuple_GET_ITEM(inline_pair, 1)) < 0);
        Py_XDECREF(nnew);
        Py_XDECREF(nsize);
        Py_XDECREF(nstored);
        if (bad) {
            goto done;
        }
    }
    seq = PyObject_CallFunctionObjArgs(append, s_kind_checkpoint, data, span, parent, NULL);
    if (seq == NULL) {
        goto done;
    }
    if (inline_pair != NULL) {
        long long cs = copy_at(store, seq, PyTuple_GET_ITEM(inline_pair, 0), PyTuple_GET_ITEM(inline_pair, 1), ratio);
        if (cs < 0) {
            goto done;
        }
        cstored += cs;
        stored += PyBytes_GET_SIZE(PyTuple_GET_ITEM(inline_pair, 1));
    }
    result = Py_NewRef(seq);

done:
    if (bookkept) {
        if (result == NULL) { /* never leave a chunk marked stored that is not */
            PyObject *et, *ev, *etb;
            PyErr_Fetch(&et, &ev, &etb);
            PyObject *stored_data = PyObject_GetAttr(store, s_data);
            Py_ssize_t n = PyList_GET_SIZE(missing);
            for (Py_ssize_t i = 0; stored_data != NULL && i < n + (inline_pair != NULL); i++) {
                PyObject *hh = PyTuple_GET_ITEM(i < n ? PyList_GET_ITEM(missing, i) : inline_pair, 0);
                if (PySequence_Contains(stored_data, hh) == 0 && PyDict_DelItem(gen_of, hh) < 0) {
                    PyErr_Clear();
                }
            }
            Py_XDECREF(stored_data);
            PyErr_Clear();
            PyErr_Restore(et, ev, etb);
        }
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        if (add_attr(store, s_bytes, stored) < 0 || add_attr(store, s_cbytes, cstored) < 0) {
            if (result != NULL && et == NULL) {
                Py_CLEAR(result);
                goto out; /* the error of the bookkeeping stands */
            }
            PyErr_Clear();
        }
        PyErr_Restore(et, ev, etb);
    }
    if (result != NULL) {
        if (PyObject_SetItem(gen_seq, gen_obj, seq) < 0) {
            Py_CLEAR(result);
            goto out;
        }
        long long cbytes = ll_attr(store, s_cbytes), budget = ll_attr(store, s_budget);
        if ((cbytes == -1 || budget == -1) && PyErr_Occurred()) {
            Py_CLEAR(result);
            goto out;
        }
        if (cbytes > budget) {
            r = PyObject_CallMethodOneArg(store, s_shrink, gen_obj);
            if (r == NULL) {
                Py_CLEAR(result);
            }
            Py_CLEAR(r);
        }
    }
    goto out;
done_type:
    if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "store._gen_of is not a dict");
    }
out:
    Py_XDECREF(gen_obj);
    Py_XDECREF(gen_seq);
    Py_XDECREF(gens);
    Py_XDECREF(gen_of);
    Py_XDECREF(held);
    Py_XDECREF(missing);
    Py_XDECREF(append);
    Py_XDECREF(new_hex);
    Py_XDECREF(seq);
    Py_XDECREF(inline_pair);
    return result;
}

static PyObject *
emit(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8 || !PyDict_CheckExact(args[3]) || !PyList_CheckExact(args[4]) || !PyDict_CheckExact(args[5])) {
        PyErr_SetString(PyExc_TypeError, "emit(store, rec, root, chunks: dict, groups: list, data: dict, span, parent)");
        return NULL;
    }
    PyObject *store = args[0], *rec = args[1];
    PyObject *lock = PyObject_GetAttr(rec, s_lock);
    if (lock == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethodNoArgs(lock, s_acquire);
    if (r == NULL) {
        Py_DECREF(lock);
        return NULL;
    }
    Py_DECREF(r);
    PyObject *result = NULL;
    PyObject *closed = PyObject_GetAttr(rec, s_closed);
    int is_closed = closed != NULL ? PyObject_IsTrue(closed) : -1;
    Py_XDECREF(closed);
    if (is_closed != 0) {
        result = is_closed > 0 ? Py_NewRef(Py_None) : NULL;
    }
    else {
        long long gen = ll_attr(store, s_gen);
        PyObject *group = Py_None;
        int usual = (gen == -1 && PyErr_Occurred()) ? -1 : usual_case(store, args[3], args[4], gen + 1, &group);
        if (usual < 0) {
            result = NULL;
        }
        else if (usual == 0) {
            result = Py_NewRef(Py_NotImplemented);
        }
        else {
            result = emit_locked(store, rec, args[2], args[3], group, args[5], args[6], args[7], gen + 1);
        }
    }
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    r = PyObject_CallMethodNoArgs(lock, s_release);
    Py_DECREF(lock);
    if (r == NULL) {
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        Py_XDECREF(result);
        return NULL;
    }
    Py_DECREF(r);
    PyErr_Restore(et, ev, etb);
    return result;
}

static PyMethodDef module_methods[] = {
    {"emit", (PyCFunction)(void (*)(void))emit, METH_FASTCALL,
     "emit(store, rec, root, chunks, groups, data, span, parent): CheckpointStore._emit's usual case (see the "
     "source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "flightrec._store", "The checkpoint store's usual emission, in C (see the source).", -1,
    module_methods,
};

static int
intern_all(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&s_gen, "_gen"},         {&s_gen_seq, "_gen_seq"},   {&s_gens, "_gens"},
        {&s_groups, "_groups"},   {&s_gen_of, "_gen_of"},     {&s_ratio, "_ratio"},
        {&s_inline_max, "_inline_max"}, {&s_data, "_data"},   {&s_csize, "_csize"},
        {&s_seq_of, "_seq_of"},   {&s_heap, "_heap"},         {&s_bytes, "_bytes"},
        {&s_cbytes, "_cbytes"},   {&s_budget, "budget"},      {&s_shrink, "_shrink"},
        {&s_chunks, "chunks"},    {&s_size, "size"},          {&s_used, "used"},
        {&s_lock, "_lock"},       {&s_closed, "closed"},      {&s_append, "append_locked"},
        {&s_acquire, "acquire"},  {&s_release, "release"},    {&s_kind_chunk, "chunk"},
        {&s_kind_checkpoint, "checkpoint"}, {&s_hash, "hash"}, {&s_new, "new"},
        {&s_stored, "stored"},    {&s_inline, "inline"},      {&s_k_chunks, "chunks"},
        {&s_k_size, "size"},      {&s_hex, "hex"},            {&s_append_m, "append"},
        {&s_data_key, "data"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL) {
            return -1;
        }
    }
    return 0;
}

PyMODINIT_FUNC
PyInit__store(void)
{
    if (intern_all() < 0) {
        return NULL;
    }
    PyObject *heapq = PyImport_ImportModule("heapq");
    if (heapq == NULL) {
        return NULL;
    }
    heappush = PyObject_GetAttrString(heapq, "heappush");
    Py_DECREF(heapq);
    if (heappush == NULL) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
    PyObject *constants = Py_BuildValue("(iiL)", CHUNK_OVERHEAD, CHUNK_LIST_MAX, PENDING);
    if (constants == NULL || PyModule_AddObject(m, "CONSTANTS", constants) < 0) {
        Py_XDECREF(constants);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
