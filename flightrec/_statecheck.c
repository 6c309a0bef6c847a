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
 *
 * Python 3.14 dropped the tag: there both say "cannot tell" (None / False) and the walker
 * hashes, as it does in pure Python.
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

static PyMethodDef methods[] = {
    {"dict_versions", (PyCFunction)(void (*)(void))dict_versions, METH_FASTCALL,
     "dict_versions(items, start, stop): the version tags of plain dicts items[start:stop], or None."},
    {"same_versions", (PyCFunction)(void (*)(void))same_versions, METH_FASTCALL,
     "same_versions(items, tags): whether items' first dicts still have these version tags."},
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
