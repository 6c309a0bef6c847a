/* flightrec._statecheck: has a list's prefix changed since the last checkpoint? In O(1) per item.
 *
 * A checkpoint of a growing conversation must notice an in-place edit of an old message
 * (`conv[3]["content"] = ...`), so the Python walker re-encodes and hashes the whole
 * unchanged prefix at every checkpoint. CPython gives every dict a version tag (PEP 509) that
 * is globally unique and changes with every mutation of that dict, and a new dict never gets
 * an old dict's tag. So a dict whose tag is the one we saw holds the same keys and values, and
 * if those values were immutable scalars then, its whole content is unchanged: no encoding
 * needed, and no reference to the agent's dicts kept.
 *
 * dict_versions(items, start, stop) -> bytes | None
 *     The tags of items[start:stop] (8 bytes each), or None unless every one of them is a
 *     plain dict (exact type, combined table) with str keys and values of exact type str,
 *     int, float, bool or None (values that cannot change without the dict changing).
 * same_versions(items, tags) -> bool
 *     Whether items[:len(tags) // 8] are dicts with exactly those tags.
 * dict_tree(d) -> bytes | None
 *     The signature of a dict and every dict below it: for each, in pre-order (and in
 *     iteration order), its tag and how many of its values are dicts (8 bytes each); None
 *     unless every one of them is a plain dict with str keys and values that are immutable
 *     scalars (bytes too) or such dicts, with no cycle and at most TREE_DEPTH levels and
 *     TREE_NODES dicts. A list or tuple anywhere below makes it None: a list changes
 *     without any tag changing, and the walker pages a list with memory of its last paging.
 * same_tree(d, sig) -> bool
 *     Whether d is still the dict tree that ``sig`` (from dict_tree) was taken from: its
 *     tag and those of the dicts below it, found from it in the same order. A dict whose
 *     tag is the one seen holds the same values (the same objects), so only its dict values
 *     need looking at, and a dict without any (the usual big map of strings) costs O(1).
 *
 * dict_hits(x, entries, chunks, trail) -> (parts, keys, missed, found)
 *     A big dict's items that its keyed memo vouches for (checkpoint.walk._dict_hits_py, the
 *     same loop in Python, says how; no dict version tag needed): a part and a boundary key
 *     per item of x (b"" and 0 where missed), (index, key, value) of each item missed, and
 *     how many of x's keys ``entries`` holds; each part taken over has its chunks added to
 *     ``chunks`` (and appended to ``trail`` unless it is None). No Python code runs in the
 *     loop (exact str keys, exact str, bytes and int compared), so x cannot change under it.
 *
 * Python 3.14 dropped the tag: there the first four say "cannot tell" (None / False) and
 * the walker hashes, as it does in pure Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030E0000
#define HAVE_DICT_VERSION 1
#if defined(__GNUC__)
/* ma_version_tag is deprecated since 3.12 (it stays until 3.14 and still changes on every mutation). */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
#endif

#ifdef HAVE_DICT_VERSION
static int
immutable_scalar(PyObject *v)
{
    return PyUnicode_CheckExact(v) || PyLong_CheckExact(v) || PyFloat_CheckExact(v) || v == Py_None ||
           v == Py_True || v == Py_False;
}

/* The dict's tag in *tag, if its content is fully described by it. */
static int
plain_tag(PyObject *d, uint64_t *tag)
{
    if (!PyDict_CheckExact(d) || ((PyDictObject *)d)->ma_values != NULL)
        return 0; /* a subclass, or a split table (an instance's __dict__) */
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(d, &pos, &k, &v)) {
        if (!PyUnicode_CheckExact(k) || !immutable_scalar(v))
            return 0;
    }
    *tag = ((PyDictObject *)d)->ma_version_tag;
    return 1;
}
#endif

#ifdef HAVE_DICT_VERSION
/* dict_tree's walk: the signature so far (a growable buffer), the dicts above (a cycle is
 * one of them met again) and how many dicts were seen (a DAG that shares a dict many times
 * over would otherwise be walked exponentially often). */
#define TREE_DEPTH 24
#define TREE_NODES (1 << 22)
typedef struct {
    char *buf;
    Py_ssize_t len, cap, nodes;
    PyObject *above[TREE_DEPTH];
} tree_sig;

static int
immutable_atom(PyObject *v)
{
    return immutable_scalar(v) || PyBytes_CheckExact(v);
}

/* Append d's subtree to s: 1 done, 0 not a plain tree (see dict_tree), -1 error. */
static int
tree_walk(tree_sig *s, PyObject *d, int depth)
{
    if (!PyDict_CheckExact(d) || ((PyDictObject *)d)->ma_values != NULL || depth >= TREE_DEPTH ||
        ++s->nodes > TREE_NODES)
        return 0;
    for (int i = 0; i < depth; i++) {
        if (s->above[i] == d)
            return 0; /* a cycle */
    }
    s->above[depth] = d;
    if (s->len + 16 > s->cap) {
        Py_ssize_t cap = s->cap * 2 > s->len + 16 ? s->cap * 2 : s->len + 16;
        char *buf = PyMem_Realloc(s->buf, cap);
        if (buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->buf = buf;
        s->cap = cap;
    }
    Py_ssize_t at = s->len; /* (an offset: the buffer may move while the children are added) */
    uint64_t tag = ((PyDictObject *)d)->ma_version_tag, children = 0;
    memcpy(s->buf + at, &tag, 8);
    s->len += 16;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    /* No Python code runs in here (exact types only), so d cannot change under the iteration. */
    while (PyDict_Next(d, &pos, &k, &v)) {
        if (!PyUnicode_CheckExact(k))
            return 0;
        if (immutable_atom(v))
            continue;
        if (!PyDict_CheckExact(v))
            return 0;
        children++;
        int rc = tree_walk(s, v, depth + 1);
        if (rc <= 0)
            return rc;
    }
    memcpy(s->buf + at + 8, &children, 8);
    return 1;
}

/* Whether d's subtree is the one at sig[*at:], advancing *at past it. */
static int
tree_same(const char *sig, Py_ssize_t len, Py_ssize_t *at, PyObject *d)
{
    if (*at + 16 > len || !PyDict_CheckExact(d) || ((PyDictObject *)d)->ma_values != NULL)
        return 0;
    uint64_t tag, children;
    memcpy(&tag, sig + *at, 8);
    memcpy(&children, sig + *at + 8, 8);
    *at += 16;
    if (((PyDictObject *)d)->ma_version_tag != tag)
        return 0;
    /* The same tag: the same dict, unchanged, so the same values in the same order, and no
     * cycle (there was none). Only the dicts among them may have changed since. */
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (children > 0 && PyDict_Next(d, &pos, &k, &v)) {
        if (PyDict_CheckExact(v)) {
            children--;
            if (!tree_same(sig, len, at, v))
                return 0;
        }
    }
    return children == 0;
}
#endif

static PyObject *
dict_tree(PyObject *Py_UNUSED(module), PyObject *arg)
{
#ifdef HAVE_DICT_VERSION
    tree_sig s = {NULL, 0, 0, 0, {NULL}};
    int rc = tree_walk(&s, arg, 0);
    PyObject *out = rc > 0 ? PyBytes_FromStringAndSize(s.buf, s.len) : rc == 0 ? Py_NewRef(Py_None) : NULL;
    PyMem_Free(s.buf);
    return out;
#else
    (void)arg;
    Py_RETURN_NONE;
#endif
}

static PyObject *
same_tree(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "same_tree(d: dict, sig: bytes)");
        return NULL;
    }
#ifdef HAVE_DICT_VERSION
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Py_ssize_t at = 0;
    int same = tree_same(view.buf, view.len, &at, args[0]) && at == view.len;
    PyBuffer_Release(&view);
    return PyBool_FromLong(same);
#else
    Py_RETURN_FALSE;
#endif
}

static PyObject *
dict_versions(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "dict_versions(items: list, start: int, stop: int)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    Py_ssize_t stop = PyLong_AsSsize_t(args[2]);
    if ((start == -1 || stop == -1) && PyErr_Occurred())
        return NULL;
#ifdef HAVE_DICT_VERSION
    PyObject *items = args[0];
    if (start < 0 || stop > PyList_GET_SIZE(items) || start > stop)
        Py_RETURN_NONE;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (stop - start) * 8);
    if (out == NULL)
        return NULL;
    char *buf = PyBytes_AS_STRING(out);
    for (Py_ssize_t i = start; i < stop; i++) {
        uint64_t tag;
        if (!plain_tag(PyList_GET_ITEM(items, i), &tag)) {
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
        memcpy(buf + (i - start) * 8, &tag, 8);
    }
    return out;
#else
    Py_RETURN_NONE;
#endif
}

static PyObject *
same_versions(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "same_versions(items: list, tags: bytes)");
        return NULL;
    }
#ifdef HAVE_DICT_VERSION
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *items = args[0];
    Py_ssize_t n = view.len / 8;
    int same = view.len % 8 == 0 && n <= PyList_GET_SIZE(items);
    const char *buf = view.buf;
    for (Py_ssize_t i = 0; same && i < n; i++) {
        PyObject *d = PyList_GET_ITEM(items, i);
        uint64_t tag;
        memcpy(&tag, buf + i * 8, 8);
        same = PyDict_CheckExact(d) && ((PyDictObject *)d)->ma_values == NULL &&
               ((PyDictObject *)d)->ma_version_tag == tag;
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(same);
#else
    Py_RETURN_FALSE;
#endif
}

static PyObject *
dict_hits(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyDict_CheckExact(args[0]) || !PyDict_CheckExact(args[1]) || !PyDict_CheckExact(args[2]) ||
        (args[3] != Py_None && !PyList_CheckExact(args[3]))) {
        PyErr_SetString(PyExc_TypeError, "dict_hits(x: dict, entries: dict, chunks: dict, trail: list | None)");
        return NULL;
    }
    PyObject *x = args[0], *entries = args[1], *chunks = args[2], *trail = args[3];
    Py_ssize_t n = PyDict_GET_SIZE(x), i = 0, found = 0, pos = 0;
    PyObject *parts = PyList_New(n), *keys = PyList_New(n), *missed = PyList_New(0);
    PyObject *empty = PyBytes_FromStringAndSize(NULL, 0), *zero = PyLong_FromLong(0);
    PyObject *k, *v;
    if (parts == NULL || keys == NULL || missed == NULL || empty == NULL || zero == NULL) {
        goto error;
    }
    while (i < n && PyDict_Next(x, &pos, &k, &v)) {
        PyObject *e = PyUnicode_CheckExact(k) ? PyDict_GetItemWithError(entries, k) : NULL; /* borrowed */
        if (e == NULL && PyErr_Occurred()) {
            goto error;
        }
        if (e != NULL) {
            if (!PyTuple_CheckExact(e) || PyTuple_GET_SIZE(e) != 4 || !PyTuple_CheckExact(PyTuple_GET_ITEM(e, 3))) {
                PyErr_SetString(PyExc_TypeError, "a keyed memo entry is a tuple (value, part, key, chunks)");
                goto error;
            }
            found++;
            PyObject *old = PyTuple_GET_ITEM(e, 0);
            int same = old == v;
            if (!same && Py_TYPE(old) == Py_TYPE(v) &&
                (PyUnicode_CheckExact(v) || PyBytes_CheckExact(v) || PyLong_CheckExact(v))) {
                same = PyObject_RichCompareBool(old, v, Py_EQ);
                if (same < 0) {
                    goto error;
                }
            }
            if (same) {
                PyObject *held = PyTuple_GET_ITEM(e, 3);
                PyList_SET_ITEM(parts, i, Py_NewRef(PyTuple_GET_ITEM(e, 1)));
                PyList_SET_ITEM(keys, i, Py_NewRef(PyTuple_GET_ITEM(e, 2)));
                i++;
                if (PyTuple_GET_SIZE(held) > 0) {
                    if (PyDict_MergeFromSeq2(chunks, held, 1) < 0) {
                        goto error;
                    }
                    for (Py_ssize_t j = 0; trail != Py_None && j < PyTuple_GET_SIZE(held); j++) {
                        if (PyList_Append(trail, PyTuple_GET_ITEM(held, j)) < 0) {
                            goto error;
                        }
                    }
                }
                continue;
            }
        }
        PyObject *at = PyLong_FromSsize_t(i);
        PyObject *miss = at != NULL ? PyTuple_Pack(3, at, k, v) : NULL;
        Py_XDECREF(at);
        if (miss == NULL || PyList_Append(missed, miss) < 0) {
            Py_XDECREF(miss);
            goto error;
        }
        Py_DECREF(miss);
        PyList_SET_ITEM(parts, i, Py_NewRef(empty));
        PyList_SET_ITEM(keys, i, Py_NewRef(zero));
        i++;
    }
    if (i != n) {
        PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
        goto error;
    }
    Py_DECREF(empty);
    Py_DECREF(zero);
    return Py_BuildValue("(NNNn)", parts, keys, missed, found);
error:
    /* (a list's unset items are NULL: freed as such) */
    Py_XDECREF(parts);
    Py_XDECREF(keys);
    Py_XDECREF(missed);
    Py_XDECREF(empty);
    Py_XDECREF(zero);
    return NULL;
}

static PyMethodDef methods[] = {
    {"dict_versions", (PyCFunction)(void (*)(void))dict_versions, METH_FASTCALL,
     "dict_versions(items, start, stop): the version tags of plain dicts items[start:stop], or None."},
    {"same_versions", (PyCFunction)(void (*)(void))same_versions, METH_FASTCALL,
     "same_versions(items, tags): whether items' first dicts still have these version tags."},
    {"dict_tree", (PyCFunction)dict_tree, METH_O,
     "dict_tree(d): the version tags of plain dict d and of the dicts below it, or None."},
    {"same_tree", (PyCFunction)(void (*)(void))same_tree, METH_FASTCALL,
     "same_tree(d, sig): whether d and the dicts below it still have the tags in sig (from dict_tree)."},
    {"dict_hits", (PyCFunction)(void (*)(void))dict_hits, METH_FASTCALL,
     "dict_hits(x, entries, chunks, trail): a big dict's parts its keyed memo vouches for, and the items missed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "flightrec._statecheck", "Dict version tags: the checkpoint's O(1) unchanged-item check.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__statecheck(void)
{
    return PyModule_Create(&module);
}
