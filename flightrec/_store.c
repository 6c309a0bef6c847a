/* flightrec._store: the checkpoint store's usual emission, in C.
 *
 * checkpoint.store.CheckpointStore._emit stores a checkpoint's new chunks and its event, and keeps
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

#define CHUNK_OVERHEAD 64           /* checkpoint.store._CHUNK_OVERHEAD */
#define CHUNK_LIST_MAX 32           /* checkpoint.store._CHUNK_LIST_MAX */
#define PENDING ((long long)1 << 62) /* checkpoint.store._PENDING */
#define RATIO_EVERY 32              /* the ratio is measured on every 32nd checkpoint's new chunks */
#define SMALL_MAX 8                 /* _register's small path: at most this many chunks */

static PyObject *s_gen, *s_gen_seq, *s_gens, *s_groups, *s_gen_of, *s_ratio, *s_inline_max, *s_data, *s_csize,
    *s_seq_of, *s_heap, *s_bytes, *s_cbytes, *s_budget, *s_shrink, *s_chunks, *s_size, *s_used, *s_lock, *s_closed,
    *s_append, *s_acquire, *s_release, *s_kind_chunk, *s_kind_checkpoint, *s_hash, *s_new, *s_stored, *s_inline,
    *s_k_chunks, *s_k_size, *s_hex, *s_append_m, *s_data_key, *s_state_max;
static PyObject *heappush;
/* Set by configure(): _paging.walk_grown, _statecheck.same_versions and .dict_versions, the
 * walker's list-item marker (checkpoint.walk._ITEM), _LABEL_MAX and context.current_span. */
static PyObject *u_walk_grown, *u_same_versions, *u_dict_versions, *u_item_marker, *u_current_span;
static Py_ssize_t u_label_max;
static PyObject *s_packer, *s_walker, *s_trail, *s_prefix, *s_tags, *s_parts, *s_wgroups, *s_h128, *s_clean_label,
    *s_rec, *s_retired, *s_emit_py, *s_root, *s_label, *s_empty, *s_forget, *s_keep_fast, *s_pack_lock, *s_left,
    *s_allowed, *s_pack_emit, *s_failed;

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
    /* Well within the limits, at any compression ratio (at most 1): the whole state within
     * state_max, and its new chunks within the budget, so that _emit's refusal and its
     * shrinking before writing (in Python) cannot apply. */
    long long raw = 0, n = PyDict_GET_SIZE(chunks);
    Py_ssize_t pos = 0;
    PyObject *h, *blob;
    while (PyDict_Next(chunks, &pos, &h, &blob)) {
        if (!PyBytes_CheckExact(blob)) {
            return 0; /* (_emit says what is wrong) */
        }
        raw += PyBytes_GET_SIZE(blob);
    }
    long long incoming = raw + n * CHUNK_OVERHEAD;
    if (*group != Py_None) {
        long long gsize = ll_attr(*group, s_size);
        PyObject *held = gsize != -1 || !PyErr_Occurred() ? PyObject_GetAttr(*group, s_chunks) : NULL;
        Py_ssize_t nheld = held != NULL ? PyObject_Length(held) : -1;
        Py_XDECREF(held);
        if (nheld < 0) {
            return -1;
        }
        raw += gsize;
        n += nheld;
    }
    long long state_max = ll_attr(store, s_state_max), cbytes = ll_attr(store, s_cbytes),
              budget = ll_attr(store, s_budget);
    if ((state_max == -1 || cbytes == -1 || budget == -1) && PyErr_Occurred()) {
        return -1;
    }
    return raw + n * CHUNK_OVERHEAD <= state_max && cbytes + incoming <= budget;
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

/*
 * checkpoint(store, state, label, span, parent) -> seq | None | NotImplemented
 *
 * CheckpointStore.checkpoint's work once the sampler kept it and the pack lock is held, for
 * the usual checkpoint: ``state`` a list that grew since the last checkpoint (its prefix
 * recognized by the dict version tags), a label that is None or a short str no rule can
 * change, no retired prefix left to settle. That is _Walker.pack (its steps: reset, _walk's
 * grown path, chunk, and every 8th turn forget_unused), then _emit: the same calls of
 * walk_grown and emit, without the Python frames around them (_emit's Python path when
 * forget_unused retired a prefix). NotImplemented, having changed nothing, in every other
 * case.
 */
static PyObject *
usual_checkpoint(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "checkpoint(store, state, label, span, parent)");
        return NULL;
    }
    PyObject *store = args[0], *state = args[1], *label = args[2];
    if (u_walk_grown == NULL || !PyList_CheckExact(state)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *walker = NULL, *packer = NULL, *prefix = NULL, *group = NULL, *gtags = NULL, *gparts = NULL;
    PyObject *tags = NULL, *retired = NULL, *trail = NULL, *inline_ = NULL, *h128 = NULL, *root = NULL;
    PyObject *chunks = NULL, *groups = NULL, *data = NULL, *rec = NULL, *seq = NULL, *obj = NULL;
    PyObject *result = NULL;
    long long gen = -1;
    if ((walker = PyObject_GetAttr(store, s_walker)) == NULL || (gen = ll_attr(walker, s_gen)) < 0 ||
        (retired = PyObject_GetAttr(walker, s_retired)) == NULL ||
        (packer = PyObject_GetAttr(walker, s_packer)) == NULL || (trail = PyObject_GetAttr(packer, s_trail)) == NULL ||
        (prefix = PyObject_GetAttr(walker, s_prefix)) == NULL) {
        goto done;
    }
    if (!PyList_CheckExact(retired) || PyList_GET_SIZE(retired) != 0 || trail != Py_None || !PyDict_CheckExact(prefix)) {
        result = Py_NewRef(Py_NotImplemented); /* an unusual walker */
        goto done;
    }
    /* _walk's grown path: the list's prefix recognized by its items' dict versions */
    group = PyDict_GetItemWithError(prefix, s_empty); /* borrowed */
    if (group == NULL) {
        result = PyErr_Occurred() ? NULL : Py_NewRef(Py_NotImplemented);
        goto done;
    }
    Py_INCREF(group);
    if ((gtags = PyObject_GetAttr(group, s_tags)) == NULL || (gparts = PyObject_GetAttr(group, s_parts)) == NULL) {
        goto done;
    }
    Py_ssize_t n = PyList_GET_SIZE(state), have = PyObject_Length(gparts);
    if (have < 0) {
        goto done;
    }
    if (gtags == Py_None || n < have) {
        result = Py_NewRef(Py_NotImplemented);
        goto done;
    }
    PyObject *same = PyObject_CallFunctionObjArgs(u_same_versions, state, gtags, NULL);
    int is_same = same != NULL ? PyObject_IsTrue(same) : -1;
    Py_XDECREF(same);
    if (is_same <= 0) {
        result = is_same < 0 ? NULL : Py_NewRef(Py_NotImplemented);
        goto done;
    }
    PyObject *lo = PyLong_FromSsize_t(have), *hi = lo != NULL ? PyLong_FromSsize_t(n) : NULL;
    tags = hi != NULL ? PyObject_CallFunctionObjArgs(u_dict_versions, state, lo, hi, NULL) : NULL;
    Py_XDECREF(lo);
    Py_XDECREF(hi);
    if (tags == NULL || tags == Py_None) {
        result = tags == NULL ? NULL : Py_NewRef(Py_NotImplemented);
        goto done;
    }
    /* _emit's label: the usual short one that no rule can change, else the Python path */
    if (label != Py_None) {
        int clean = 0;
        if (PyUnicode_CheckExact(label) && PyUnicode_GET_LENGTH(label) <= u_label_max) {
            PyObject *test = PyObject_GetAttr(store, s_clean_label);
            PyObject *ok = test != NULL && test != Py_None ? PyObject_CallOneArg(test, label) : NULL;
            clean = ok != NULL ? PyObject_IsTrue(ok) : 0;
            Py_XDECREF(test);
            Py_XDECREF(ok);
            if (clean < 0 || PyErr_Occurred()) {
                goto done;
            }
        }
        if (clean != 1) {
            result = Py_NewRef(Py_NotImplemented);
            goto done;
        }
    }
    /* pack: a new turn, then the walk */
    if ((obj = PyLong_FromLongLong(gen + 1)) == NULL || PyObject_SetAttr(walker, s_gen, obj) < 0 ||
        (groups = PyList_New(0)) == NULL || PyObject_SetAttr(walker, s_wgroups, groups) < 0 ||
        (chunks = PyDict_New()) == NULL || PyObject_SetAttr(packer, s_chunks, chunks) < 0 ||
        PyObject_SetAttr(packer, s_trail, Py_None) < 0) {
        goto done;
    }
    PyObject *wargs[7] = {walker, packer, state, s_empty, group, tags, u_item_marker};
    if ((inline_ = PyObject_Vectorcall(u_walk_grown, wargs, 7, NULL)) == NULL) {
        goto done;
    }
    /* packer.chunk(inline): the root */
    Py_CLEAR(trail);
    if ((h128 = PyObject_GetAttr(packer, s_h128)) == NULL || (root = PyObject_CallOneArg(h128, inline_)) == NULL ||
        (trail = PyObject_GetAttr(packer, s_trail)) == NULL) {
        goto done;
    }
    Py_SETREF(chunks, PyObject_GetAttr(packer, s_chunks)); /* (the walk fills the same dict) */
    if (chunks == NULL || !PyDict_CheckExact(chunks) || !PyBytes_CheckExact(root)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "packer.chunks must be a dict, its digests bytes");
        }
        goto done;
    }
    int known = PyDict_Contains(chunks, root);
    if (known < 0 || (!known && PyDict_SetItem(chunks, root, inline_) < 0)) {
        goto done;
    }
    if (trail != Py_None) {
        PyObject *pair = PyTuple_Pack(2, root, inline_);
        PyObject *r = pair != NULL ? PyObject_CallMethodOneArg(trail, s_append_m, pair) : NULL;
        Py_XDECREF(pair);
        if (r == NULL) {
            goto done;
        }
        Py_DECREF(r);
    }
    /* pack's end: every 8th turn forgets the memo entries the last 8 did not use, which may
     * retire prefixes (then _emit's Python path settles them) */
    if ((gen + 1) % 8 == 0) {
        PyObject *r = PyObject_CallMethodNoArgs(walker, s_forget);
        Py_XDECREF(r);
        Py_XSETREF(retired, r != NULL ? PyObject_GetAttr(walker, s_retired) : NULL);
        if (retired == NULL) {
            goto done;
        }
        if (!PyList_CheckExact(retired)) {
            PyErr_SetString(PyExc_TypeError, "walker.retired must be a list");
            goto done;
        }
        if (PyList_GET_SIZE(retired) != 0) {
            PyObject *none_yet = PyList_New(0); /* (retired, walker.retired = walker.retired, []) */
            int bad = none_yet == NULL || PyObject_SetAttr(walker, s_retired, none_yet) < 0;
            Py_XDECREF(none_yet);
            if (bad) {
                goto done;
            }
        }
    }
    /* _emit: the event's fields, then the store's usual emission (or its Python path) */
    Py_SETREF(groups, PyObject_GetAttr(walker, s_wgroups));
    PyObject *hex = PyObject_CallMethodNoArgs(root, s_hex);
    data = hex != NULL ? PyDict_New() : NULL;
    int bad = data == NULL || PyDict_SetItem(data, s_root, hex) < 0 ||
              (label != Py_None && PyDict_SetItem(data, s_label, label) < 0);
    Py_XDECREF(hex);
    if (bad || groups == NULL || !PyList_CheckExact(groups) || (rec = PyObject_GetAttr(store, s_rec)) == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "walker.groups must be a list");
        }
        goto done;
    }
    if (PyList_GET_SIZE(retired) == 0) {
        PyObject *eargs[8] = {store, rec, root, chunks, groups, data, args[3], args[4]};
        if ((seq = emit(NULL, eargs, 8)) == NULL) {
            goto done;
        }
    }
    else {
        seq = Py_NewRef(Py_NotImplemented); /* prefixes to settle: C's emit has none */
    }
    if (seq == Py_NotImplemented) {
        Py_DECREF(seq);
        PyObject *pargs[8] = {store, root, chunks, groups, label, args[3], args[4], retired};
        seq = PyObject_VectorcallMethod(s_emit_py, pargs, 8, NULL);
    }
    result = seq;
    seq = NULL;
done:
    Py_XDECREF(walker);
    Py_XDECREF(packer);
    Py_XDECREF(prefix);
    Py_XDECREF(group);
    Py_XDECREF(gtags);
    Py_XDECREF(gparts);
    Py_XDECREF(tags);
    Py_XDECREF(retired);
    Py_XDECREF(trail);
    Py_XDECREF(inline_);
    Py_XDECREF(h128);
    Py_XDECREF(root);
    Py_XDECREF(chunks);
    Py_XDECREF(groups);
    Py_XDECREF(data);
    Py_XDECREF(rec);
    Py_XDECREF(seq);
    Py_XDECREF(obj);
    return result;
}

/* configure(walk_grown, same_versions, dict_versions, item_marker, label_max, current_span) */
static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyLong_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "configure(walk_grown, same_versions, dict_versions, item_marker, label_max, current_span)");
        return NULL;
    }
    Py_ssize_t label_max = PyLong_AsSsize_t(args[4]);
    if (label_max < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "label_max must be >= 0");
        }
        return NULL;
    }
    if (!PyContextVar_CheckExact(args[5])) {
        PyErr_SetString(PyExc_TypeError, "current_span must be a ContextVar");
        return NULL;
    }
    Py_XSETREF(u_walk_grown, Py_NewRef(args[0]));
    Py_XSETREF(u_same_versions, Py_NewRef(args[1]));
    Py_XSETREF(u_dict_versions, Py_NewRef(args[2]));
    Py_XSETREF(u_item_marker, Py_NewRef(args[3]));
    Py_XSETREF(u_current_span, Py_NewRef(args[5]));
    u_label_max = label_max;
    Py_RETURN_NONE;
}

/*
 * entry(store, state, label) -> seq | None
 *
 * CheckpointStore.checkpoint(state, label), the same steps without its Python frame (cold,
 * as a checkpoint's code is between two steps of the agent, a frame costs more than its
 * bytecode suggests): the span, the sampler's keep-all table (a checkpoint it does not
 * keep unconditionally takes the method, which asks the sampler), the pack lock, then
 * the usual checkpoint, or _pack_emit; what either raises goes through _failed.
 */
static PyObject *
entry(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "entry(store, state, label)");
        return NULL;
    }
    PyObject *store = args[0], *state = args[1], *label = args[2];
    PyObject *rec = NULL, *ctx = NULL, *incr = NULL, *lock = NULL, *state_max = NULL, *walker = NULL, *packer = NULL;
    PyObject *result = NULL;
    PyObject *span = Py_None, *parent = Py_None;
    int locked = 0;
    if (u_current_span == NULL || u_walk_grown == NULL) {
        goto method;
    }
    if (PyContextVar_Get(u_current_span, NULL, &ctx) < 0) {
        return NULL;
    }
    if (ctx != NULL && ctx != Py_None) {
        if (!PyTuple_CheckExact(ctx) || PyTuple_GET_SIZE(ctx) != 2) {
            Py_DECREF(ctx);
            goto method; /* (not what step sets: let the method fail as it would) */
        }
        span = PyTuple_GET_ITEM(ctx, 0);
        parent = PyTuple_GET_ITEM(ctx, 1);
    }
    if ((rec = PyObject_GetAttr(store, s_rec)) == NULL ||
        (incr = PyObject_CallMethodOneArg(rec, s_keep_fast, s_kind_checkpoint)) == NULL) {
        goto done;
    }
    if (incr == Py_None) {
        Py_CLEAR(ctx);
        Py_CLEAR(rec);
        Py_CLEAR(incr);
        goto method; /* the sampler decides */
    }
    PyObject *counted = PyObject_CallNoArgs(incr);
    if (counted == NULL) {
        goto done;
    }
    Py_DECREF(counted);
    if ((lock = PyObject_GetAttr(store, s_pack_lock)) == NULL) {
        goto done;
    }
    PyObject *got = PyObject_CallMethodNoArgs(lock, s_acquire);
    if (got == NULL) {
        goto done;
    }
    Py_DECREF(got);
    locked = 1;
    /* walker._packer.left = store._allowed = store.state_max */
    if ((state_max = PyObject_GetAttr(store, s_state_max)) == NULL ||
        (walker = PyObject_GetAttr(store, s_walker)) == NULL || (packer = PyObject_GetAttr(walker, s_packer)) == NULL ||
        PyObject_SetAttr(packer, s_left, state_max) < 0 || PyObject_SetAttr(store, s_allowed, state_max) < 0) {
        goto done;
    }
    PyObject *cargs[5] = {store, state, label, span, parent};
    result = usual_checkpoint(NULL, cargs, 5);
    if (result == Py_NotImplemented) {
        Py_CLEAR(result);
        result = PyObject_VectorcallMethod(s_pack_emit, cargs, 5, NULL);
    }
    if (result == NULL) {
        /* except BaseException as e: return self._failed(e, label, span, parent) */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        if (ev == NULL) {
            Py_XDECREF(et);
            Py_XDECREF(etb);
            goto done; /* (cannot be: an error was set) */
        }
        if (etb != NULL) {
            PyException_SetTraceback(ev, etb);
        }
        PyObject *fargs[5] = {store, ev, label, span, parent};
        result = PyObject_VectorcallMethod(s_failed, fargs, 5, NULL);
        Py_XDECREF(et);
        Py_DECREF(ev);
        Py_XDECREF(etb);
    }
done:
    if (locked) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyObject *r = PyObject_CallMethodNoArgs(lock, s_release);
        if (r == NULL) {
            Py_CLEAR(result);
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(etb);
        }
        else {
            Py_DECREF(r);
            PyErr_Restore(et, ev, etb);
        }
    }
    Py_XDECREF(ctx);
    Py_XDECREF(rec);
    Py_XDECREF(incr);
    Py_XDECREF(lock);
    Py_XDECREF(state_max);
    Py_XDECREF(walker);
    Py_XDECREF(packer);
    return result;
method: {
    PyObject *margs[3] = {store, state, label};
    return PyObject_VectorcallMethod(s_kind_checkpoint, margs, 3, NULL);
}
}

static PyMethodDef module_methods[] = {
    {"emit", (PyCFunction)(void (*)(void))emit, METH_FASTCALL,
     "emit(store, rec, root, chunks, groups, data, span, parent): CheckpointStore._emit's usual case (see the "
     "source)."},
    {"checkpoint", (PyCFunction)(void (*)(void))usual_checkpoint, METH_FASTCALL,
     "checkpoint(store, state, label, span, parent): CheckpointStore.checkpoint's usual case once kept and "
     "locked (see the source); NotImplemented otherwise."},
    {"entry", (PyCFunction)(void (*)(void))entry, METH_FASTCALL,
     "entry(store, state, label): CheckpointStore.checkpoint(state, label) without its Python frame (see the "
     "source)."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(walk_grown, same_versions, dict_versions, item_marker, label_max, current_span): what "
     "checkpoint() and entry() call."},
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
        {&s_cbytes, "_cbytes"},   {&s_budget, "budget"},      {&s_state_max, "state_max"},      {&s_shrink, "_shrink"},
        {&s_chunks, "chunks"},    {&s_size, "size"},          {&s_used, "used"},
        {&s_lock, "_lock"},       {&s_closed, "closed"},      {&s_append, "append_locked"},
        {&s_acquire, "acquire"},  {&s_release, "release"},    {&s_kind_chunk, "chunk"},
        {&s_kind_checkpoint, "checkpoint"}, {&s_hash, "hash"}, {&s_new, "new"},
        {&s_stored, "stored"},    {&s_inline, "inline"},      {&s_k_chunks, "chunks"},
        {&s_k_size, "size"},      {&s_hex, "hex"},            {&s_append_m, "append"},
        {&s_data_key, "data"},    {&s_packer, "_packer"},     {&s_trail, "trail"},
        {&s_prefix, "_prefix"},   {&s_tags, "tags"},          {&s_parts, "parts"},
        {&s_wgroups, "groups"},   {&s_h128, "_h128"},         {&s_clean_label, "_clean_label"},
        {&s_rec, "_rec"},         {&s_retired, "retired"},    {&s_emit_py, "_emit"}, {&s_forget, "forget_unused"},
        {&s_keep_fast, "_keep_fast"}, {&s_pack_lock, "_pack_lock"}, {&s_left, "left"}, {&s_allowed, "_allowed"},
        {&s_pack_emit, "_pack_emit"}, {&s_failed, "_failed"},
        {&s_root, "root"},        {&s_label, "label"},        {&s_empty, ""},
        {&s_walker, "_walker"},
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
