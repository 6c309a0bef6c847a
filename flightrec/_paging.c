/* flightrec._paging: the walk and paging of a list that grew since its last checkpoint, in C.
 *
 * A checkpoint of a growing conversation takes the list's unchanged prefix over as a group
 * (checkpoint.walk._Walker._grown), packs the new items, and pages the list again (see
 * checkpoint.pack._Packer.paged): every page but the last is taken over from the last paging,
 * the last one is cut again with the new items. In Python that is some 100 lines run per
 * checkpoint, most of the checkpoint's cost once the walker has recognized the unchanged
 * items. These are the same steps in two calls.
 *
 * paged_grown(packer, parts, keys, prev, group) -> bytes | None
 *     _Packer.paged("l", parts, keys, prev, group) (group: the walker's prefix or None) when
 *     prev is the last paging of this list, its parts are a prefix of ``parts`` (the list
 *     only grew) and its pages fit a chunk without measuring them (the usual case): the same
 *     result, and the same updates of packer.chunks, packer.trail, prev and the group.
 *     None, having changed nothing, in every other case: the Python code does it.
 *
 * walk_grown(walker, packer, items, path, group, tags, item_marker) -> bytes
 *     _Walker._grown(packer, items, path, group, tags): the same result and the same updates
 *     of the walker, the packer and the group (each new item packed by _Walker._item, the
 *     list paged by _Packer.paged).
 *
 * The constants below are checkpoint/wire.py's (tests check that they agree).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_msgpack.h"

#define MIN_CHUNK 192
#define PAGE_MAX 64
#define BOUNDARY_MASK 15
#define INLINE_TAIL_MAX 2048
#define EXT_CAT 2
#define REF_LEN 18
static const unsigned char REF_HEAD[2] = {0xd8, 0x01}; /* fixext 16, type EXT_REF */
static const unsigned char TAG_L[2] = {0xa1, 'l'};     /* msgpack "l" */

static PyObject *str_chunks, *str_trail, *str_max_chunk, *str_h128, *str_cat, *str_l;
static int group_hold(PyObject *group, PyObject *pairs);
static PyObject *str_gen, *str_wgen, *str_hits, *str_groups, *str_parts, *str_keys, *str_memo, *str_context, *str_item,
    *str_tagged, *str_tags, *str_size, *str_paging, *str_paged, *str_unit, *str_encode;

/* MessagePack array header for n items (at most 5 bytes); its length. */
static Py_ssize_t
array_head(unsigned char *out, Py_ssize_t n)
{
    return (Py_ssize_t)MP_ARRAY_HEAD(out, (uint64_t)n);
}

/* head(e - a) + b"".join(parts[a:e]): one page, all its parts bytes. */
static PyObject *
join_page(PyObject *parts, Py_ssize_t a, Py_ssize_t e)
{
    unsigned char head[5];
    Py_ssize_t hn = array_head(head, e - a), size = hn;
    for (Py_ssize_t i = a; i < e; i++) {
        PyObject *p = PyList_GET_ITEM(parts, i);
        if (!PyBytes_CheckExact(p)) {
            PyErr_SetString(PyExc_TypeError, "a part is not bytes");
            return NULL;
        }
        size += PyBytes_GET_SIZE(p);
    }
    PyObject *page = PyBytes_FromStringAndSize(NULL, size);
    if (page == NULL) {
        return NULL;
    }
    char *w = PyBytes_AS_STRING(page);
    memcpy(w, head, (size_t)hn);
    w += hn;
    for (Py_ssize_t i = a; i < e; i++) {
        PyObject *p = PyList_GET_ITEM(parts, i);
        memcpy(w, PyBytes_AS_STRING(p), (size_t)PyBytes_GET_SIZE(p));
        w += PyBytes_GET_SIZE(p);
    }
    return page;
}

/* _Packer._ref(page): the page registered as a chunk (in chunks, and the trail if any); its
 * 18-byte reference. */
static PyObject *
ref_page(PyObject *h128, PyObject *chunks, PyObject *trail, PyObject *page)
{
    PyObject *h = PyObject_CallOneArg(h128, page);
    if (h == NULL) {
        return NULL;
    }
    if (!PyBytes_CheckExact(h) || PyBytes_GET_SIZE(h) != REF_LEN - 2) {
        PyErr_SetString(PyExc_TypeError, "the chunk hash is not 16 bytes");
        Py_DECREF(h);
        return NULL;
    }
    int known = PyDict_Contains(chunks, h);
    if (known < 0 || (!known && PyDict_SetItem(chunks, h, page) < 0)) {
        Py_DECREF(h);
        return NULL;
    }
    if (trail != Py_None) {
        PyObject *pair = PyTuple_Pack(2, h, page);
        if (pair == NULL || PyList_Append(trail, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(h);
            return NULL;
        }
        Py_DECREF(pair);
    }
    PyObject *ref = PyBytes_FromStringAndSize(NULL, REF_LEN);
    if (ref != NULL) {
        memcpy(PyBytes_AS_STRING(ref), REF_HEAD, 2);
        memcpy(PyBytes_AS_STRING(ref) + 2, PyBytes_AS_STRING(h), REF_LEN - 2);
    }
    Py_DECREF(h);
    return ref;
}

/* _Packer._cat("l", pages) when it is one node (else the Python method). */
static PyObject *
cat_pages(PyObject *packer, PyObject *pages, Py_ssize_t max_chunk)
{
    Py_ssize_t n = PyList_GET_SIZE(pages), body = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        body += PyBytes_GET_SIZE(PyList_GET_ITEM(pages, i));
    }
    if (n > PAGE_MAX || body + 16 > max_chunk) {
        return PyObject_CallMethodObjArgs(packer, str_cat, str_l, pages, NULL);
    }
    unsigned char head[5];
    Py_ssize_t hn = array_head(head, n + 1);
    Py_ssize_t inner = hn + 2 + body; /* the array: header, the tag "l", the pages */
    unsigned char ext[6];
    Py_ssize_t en;
    if (inner < 0x100) {
        ext[0] = 0xc7;
        ext[1] = (unsigned char)inner;
        ext[2] = EXT_CAT;
        en = 3;
    }
    else if (inner < 0x10000) {
        ext[0] = 0xc8;
        ext[1] = (unsigned char)(inner >> 8);
        ext[2] = (unsigned char)inner;
        ext[3] = EXT_CAT;
        en = 4;
    }
    else {
        ext[0] = 0xc9;
        ext[1] = (unsigned char)(inner >> 24);
        ext[2] = (unsigned char)(inner >> 16);
        ext[3] = (unsigned char)(inner >> 8);
        ext[4] = (unsigned char)inner;
        ext[5] = EXT_CAT;
        en = 6;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, en + inner);
    if (out == NULL) {
        return NULL;
    }
    char *w = PyBytes_AS_STRING(out);
    memcpy(w, ext, (size_t)en);
    w += en;
    memcpy(w, head, (size_t)hn);
    w += hn;
    memcpy(w, TAG_L, 2);
    w += 2;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyList_GET_ITEM(pages, i);
        memcpy(w, PyBytes_AS_STRING(p), (size_t)PyBytes_GET_SIZE(p));
        w += PyBytes_GET_SIZE(p);
    }
    return out;
}

static Py_ssize_t
ssize_attr(PyObject *obj, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) {
        return -1;
    }
    Py_ssize_t n = PyLong_Check(v) ? PyLong_AsSsize_t(v) : -1;
    Py_DECREF(v);
    if (n < 0 && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "not a size");
    }
    return n;
}

/* _Packer.paged's first case for a list: at most PAGE_MAX parts whose sum of lengths + 5
 * fits a chunk are one container, head(n) + b"".join(parts) (no Python frame, no sum over
 * the parts in Python: a short list, as most conversations are, is every checkpoint's
 * case). NULL with no error set when this is not the case (paged() decides then). */
static PyObject *
small_list(PyObject *packer, PyObject *parts)
{
    Py_ssize_t n = PyList_GET_SIZE(parts), body = 0;
    if (n > PAGE_MAX) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyList_GET_ITEM(parts, i);
        if (!PyBytes_CheckExact(p)) {
            return NULL;
        }
        body += PyBytes_GET_SIZE(p);
    }
    Py_ssize_t max_chunk = ssize_attr(packer, str_max_chunk);
    if (max_chunk < 0) {
        PyErr_Clear(); /* paged() raises it */
        return NULL;
    }
    if (body + 5 > max_chunk) {
        return NULL;
    }
    return join_page(parts, 0, n);
}

/* Whether the paging in ``prev`` can be continued here (see the module docstring); 1 yes,
 * 0 no (the Python path), -1 on error. */
static int
grown_from(PyObject *prev, PyObject *parts, Py_ssize_t fits)
{
    if (PyList_GET_SIZE(prev) < 7 || !fits) {
        return 0;
    }
    PyObject *tag = PyList_GET_ITEM(prev, 0), *old = PyList_GET_ITEM(prev, 1);
    if (!PyUnicode_CheckExact(tag) || PyUnicode_Compare(tag, str_l) != 0 || PyList_GET_ITEM(prev, 4) != Py_True) {
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *pages = PyList_GET_ITEM(prev, 2), *ends = PyList_GET_ITEM(prev, 3), *chunks = PyList_GET_ITEM(prev, 5);
    if (!PyList_CheckExact(old) || !PyList_CheckExact(pages) || !PyList_CheckExact(ends) ||
        !PyList_CheckExact(chunks) || !PyTuple_CheckExact(PyList_GET_ITEM(prev, 6))) {
        return 0;
    }
    Py_ssize_t kept = PyList_GET_SIZE(pages) - 1, m = PyList_GET_SIZE(old);
    if (kept < 0 || PyList_GET_SIZE(ends) < kept || PyList_GET_SIZE(chunks) < kept || m > PyList_GET_SIZE(parts)) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < m; i++) { /* prev[1] == parts[:len(prev[1])], mostly the same objects */
        PyObject *a = PyList_GET_ITEM(old, i), *b = PyList_GET_ITEM(parts, i);
        if (a != b) {
            int same = PyObject_RichCompareBool(a, b, Py_EQ);
            if (same <= 0) {
                return same;
            }
        }
    }
    return 1;
}

static PyObject *
paged_grown(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyList_CheckExact(args[1]) || !PyList_CheckExact(args[2]) || !PyList_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError, "paged_grown(packer, parts: list, keys: list, prev: list, group)");
        return NULL;
    }
    PyObject *packer = args[0], *parts = args[1], *keys = args[2], *prev = args[3], *group = args[4];
    Py_ssize_t n = PyList_GET_SIZE(parts);
    if (PyList_GET_SIZE(keys) != n) {
        Py_RETURN_NONE;
    }
    Py_ssize_t max_chunk = ssize_attr(packer, str_max_chunk);
    if (max_chunk < 0) {
        return NULL;
    }
    int ok = grown_from(prev, parts, max_chunk - 8 >= MIN_CHUNK * PAGE_MAX);
    if (ok <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *old_pages = PyList_GET_ITEM(prev, 2), *old_ends = PyList_GET_ITEM(prev, 3);
    PyObject *old_chunks = PyList_GET_ITEM(prev, 5), *old_group = PyList_GET_ITEM(prev, 6);
    Py_ssize_t kept = PyList_GET_SIZE(old_pages) - 1, given = 0, a = 0;
    if (kept > 0) {
        a = PyLong_AsSsize_t(PyList_GET_ITEM(old_ends, kept - 1));
        if (a < 0 || a > n) {
            return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
        }
    }
    if (group != Py_None && PyTuple_GET_SIZE(old_group) == 2 && PyTuple_GET_ITEM(old_group, 0) == group) {
        given = PyLong_AsSsize_t(PyTuple_GET_ITEM(old_group, 1));
        if (given < 0) {
            return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
        }
        given = given < kept ? given : kept; /* the group holds these pages already */
    }

    PyObject *chunks = NULL, *trail = NULL, *h128 = NULL, *pages = NULL, *ends = NULL, *page_chunks = NULL;
    PyObject *result = NULL;
    chunks = PyObject_GetAttr(packer, str_chunks);
    trail = chunks != NULL ? PyObject_GetAttr(packer, str_trail) : NULL;
    h128 = trail != NULL ? PyObject_GetAttr(packer, str_h128) : NULL;
    if (h128 == NULL) {
        goto done;
    }
    if (!PyDict_CheckExact(chunks) || (trail != Py_None && !PyList_CheckExact(trail))) {
        PyErr_SetString(PyExc_TypeError, "packer.chunks: a dict, packer.trail: a list or None");
        goto done;
    }
    /* the kept pages' chunks this checkpoint needs (those the group does not hold) */
    for (Py_ssize_t j = given; j < kept; j++) {
        PyObject *pair = PyList_GET_ITEM(old_chunks, j);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "a page chunk is not a (digest, data) pair");
            goto done;
        }
        int known = PyDict_Contains(chunks, PyTuple_GET_ITEM(pair, 0));
        if (known < 0 ||
            (!known && PyDict_SetItem(chunks, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0) ||
            (trail != Py_None && PyList_Append(trail, pair) < 0)) {
            goto done;
        }
    }
    pages = PyList_GetSlice(old_pages, 0, kept);
    ends = pages != NULL ? PyList_GetSlice(old_ends, 0, kept) : NULL;
    page_chunks = ends != NULL ? PyList_GetSlice(old_chunks, 0, kept) : NULL;
    if (page_chunks == NULL) {
        goto done;
    }
    /* Cut the rest: after a part whose key's low bits are zero, after PAGE_MAX parts, and at
     * the end; the last page stays inline when small. */
    for (Py_ssize_t i = a; i < n; i++) {
        unsigned long long k = PyLong_AsUnsignedLongLongMask(PyList_GET_ITEM(keys, i));
        if (k == (unsigned long long)-1 && PyErr_Occurred()) {
            goto done;
        }
        if ((k & BOUNDARY_MASK) != 0 && i + 1 < n) {
            continue;
        }
        while (a < i + 1) {
            Py_ssize_t e = i + 1 < a + PAGE_MAX ? i + 1 : a + PAGE_MAX;
            PyObject *page = join_page(parts, a, e);
            if (page == NULL) {
                goto done;
            }
            PyObject *item = page;
            if (!(e == n && PyBytes_GET_SIZE(page) <= INLINE_TAIL_MAX)) {
                item = ref_page(h128, chunks, trail, page);
                if (item != NULL) {
                    /* page_chunks gets (digest, chunks[digest]) as the Python code takes it */
                    PyObject *h = PyBytes_FromStringAndSize(PyBytes_AS_STRING(item) + 2, REF_LEN - 2);
                    PyObject *blob = h != NULL ? PyDict_GetItemWithError(chunks, h) : NULL; /* borrowed */
                    PyObject *pair = blob != NULL ? PyTuple_Pack(2, h, blob) : NULL;
                    int bad = pair == NULL || PyList_Append(page_chunks, pair) < 0;
                    Py_XDECREF(pair);
                    Py_XDECREF(h);
                    if (bad) {
                        if (!PyErr_Occurred()) {
                            PyErr_SetString(PyExc_KeyError, "page chunk");
                        }
                        Py_DECREF(item);
                        item = NULL;
                    }
                }
                Py_DECREF(page);
                if (item == NULL) {
                    goto done;
                }
            }
            PyObject *end = PyLong_FromSsize_t(e);
            int bad = end == NULL || PyList_Append(pages, item) < 0 || PyList_Append(ends, end) < 0;
            Py_XDECREF(end);
            Py_DECREF(item);
            if (bad) {
                goto done;
            }
            a = e;
        }
    }
    Py_ssize_t stable = 0;
    if (group != Py_None) { /* every page but the last stays while the list only grows */
        Py_ssize_t np = PyList_GET_SIZE(pages) - 1, nc = PyList_GET_SIZE(page_chunks);
        stable = nc < np ? nc : np;
        PyObject *held = PyList_GetSlice(page_chunks, given, stable);
        int bad = held == NULL || group_hold(group, held) < 0;
        Py_XDECREF(held);
        if (bad) {
            goto done;
        }
    }
    PyObject *stable_obj = PyLong_FromSsize_t(stable);
    PyObject *mark = stable_obj != NULL ? PyTuple_Pack(2, group, stable_obj) : NULL;
    Py_XDECREF(stable_obj);
    PyObject *paging = mark != NULL ? PyList_New(7) : NULL;
    if (paging == NULL) {
        Py_XDECREF(mark);
        goto done;
    }
    PyObject *items[7] = {str_l, parts, pages, ends, Py_True, page_chunks, mark};
    for (int i = 0; i < 7; i++) {
        PyList_SET_ITEM(paging, i, i == 6 ? items[i] : Py_NewRef(items[i])); /* (mark: ours to give) */
    }
    int bad = PyList_SetSlice(prev, 0, PyList_GET_SIZE(prev), paging) < 0;
    Py_DECREF(paging);
    if (!bad) {
        result = cat_pages(packer, pages, max_chunk);
    }
done:
    Py_XDECREF(chunks);
    Py_XDECREF(trail);
    Py_XDECREF(h128);
    Py_XDECREF(pages);
    Py_XDECREF(ends);
    Py_XDECREF(page_chunks);
    return result;
}

/* _Prefix.hold(pairs): the group keeps the chunks it does not hold yet (and their size). */
static int
group_hold(PyObject *group, PyObject *pairs)
{
    PyObject *held = PyObject_GetAttr(group, str_chunks);
    if (held == NULL) {
        return -1;
    }
    long long added = 0;
    int rc = PyDict_CheckExact(held) ? 0 : -1;
    if (rc < 0) {
        PyErr_SetString(PyExc_TypeError, "group.chunks is not a dict");
    }
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(pairs); i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i);
        PyObject *h = PyTuple_GET_ITEM(pair, 0), *blob = PyTuple_GET_ITEM(pair, 1);
        int known = PyDict_Contains(held, h);
        if (known < 0 || (!known && PyDict_SetItem(held, h, blob) < 0)) {
            rc = -1;
        }
        else if (!known) {
            added += PyBytes_GET_SIZE(blob);
        }
    }
    Py_DECREF(held);
    if (rc == 0 && added) {
        PyObject *size = PyObject_GetAttr(group, str_size);
        PyObject *more = size != NULL ? PyLong_FromLongLong(added) : NULL;
        PyObject *sum = more != NULL ? PyNumber_Add(size, more) : NULL;
        rc = sum != NULL ? PyObject_SetAttr(group, str_size, sum) : -1;
        Py_XDECREF(size);
        Py_XDECREF(more);
        Py_XDECREF(sum);
    }
    return rc;
}

/* obj.name += delta (an int attribute). */
static int
add_to(PyObject *obj, PyObject *name, Py_ssize_t delta)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    PyObject *d = v != NULL ? PyLong_FromSsize_t(delta) : NULL;
    PyObject *sum = d != NULL ? PyNumber_Add(v, d) : NULL;
    int rc = sum != NULL ? PyObject_SetAttr(obj, name, sum) : -1;
    Py_XDECREF(v);
    Py_XDECREF(d);
    Py_XDECREF(sum);
    return rc;
}

/* walker._item(packer, x, path, k, memo, trail) (see checkpoint/walk.py): the memo entry of list
 * item x, found by the digest of its encoding (an item an earlier checkpoint packed: the
 * usual case), else packed now by walker._unit. ``encode`` is walker._encode, ``h128``
 * packer._h128, ``chunks`` packer.chunks, ``gen`` walker._gen. A new reference, or NULL with
 * an error set. */
static PyObject *
item_entry(PyObject *walker, PyObject *packer, PyObject *encode, PyObject *h128, PyObject *chunks, PyObject *gen,
           PyObject *x, PyObject *path, PyObject *index, PyObject *memo, PyObject *trail)
{
    PyObject *enc = PyObject_CallOneArg(encode, x);
    PyObject *raw = enc != NULL ? PyObject_CallOneArg(h128, enc) : NULL;
    Py_XDECREF(enc);
    if (raw == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL;
        }
        PyErr_Clear(); /* e.g. an int beyond 64 bits: packed without the memo */
        PyObject *call[8] = {walker, packer, x, path, index, Py_True, Py_None, Py_None};
        return PyObject_VectorcallMethod(str_unit, call, 8, NULL);
    }
    PyObject *entry = PyDict_GetItemWithError(memo, raw); /* borrowed */
    if (entry == NULL) {
        PyObject *r = NULL;
        if (!PyErr_Occurred()) {
            PyObject *call[8] = {walker, packer, x, path, index, Py_True, memo, raw};
            r = PyObject_VectorcallMethod(str_unit, call, 8, NULL);
        }
        Py_DECREF(raw);
        return r;
    }
    Py_INCREF(entry);
    Py_DECREF(raw);
    if (!PyList_CheckExact(entry) || PyList_GET_SIZE(entry) != 4) {
        PyErr_SetString(PyExc_TypeError, "a memo entry is a list of 4");
        Py_DECREF(entry);
        return NULL;
    }
    /* entry[2] = gen; packer.chunks.update(entry[1]); trail.extend(entry[1]); walker.hits += 1 */
    PyObject *pairs = PyList_GET_ITEM(entry, 1);
    PyObject *grown = NULL;
    if (PyList_SetItem(entry, 2, Py_NewRef(gen)) < 0 || PyDict_MergeFromSeq2(chunks, pairs, 1) < 0 ||
        (grown = PySequence_InPlaceConcat(trail, pairs)) == NULL || add_to(walker, str_hits, 1) < 0) {
        Py_XDECREF(grown);
        Py_DECREF(entry);
        return NULL;
    }
    Py_DECREF(grown);
    return entry;
}

/* The memo of the list's items: walker._memo.get((path, _ITEM)) or walker._context(path, _ITEM). */
static PyObject *
item_memo(PyObject *walker, PyObject *path, PyObject *marker)
{
    PyObject *memos = PyObject_GetAttr(walker, str_memo);
    if (memos == NULL) {
        return NULL;
    }
    PyObject *key = PyTuple_Pack(2, path, marker);
    PyObject *memo = key != NULL && PyDict_CheckExact(memos) ? PyDict_GetItemWithError(memos, key) : NULL;
    Py_XDECREF(key);
    Py_DECREF(memos);
    if (memo != NULL && PyObject_IsTrue(memo) > 0) {
        return Py_NewRef(memo);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyObject_CallMethodObjArgs(walker, str_context, path, marker, NULL);
}

static PyObject *
walk_grown(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyList_CheckExact(args[2]) || !PyBytes_CheckExact(args[5])) {
        PyErr_SetString(PyExc_TypeError, "walk_grown(walker, packer, items: list, path, group, tags: bytes, item_marker)");
        return NULL;
    }
    PyObject *walker = args[0], *packer = args[1], *items = args[2], *path = args[3], *group = args[4];
    PyObject *tags = args[5], *marker = args[6];
    PyObject *gen = NULL, *gparts = NULL, *gkeys = NULL, *parts = NULL, *keys = NULL, *groups = NULL;
    PyObject *memo = NULL, *appended = NULL, *added = NULL, *paging = NULL, *prev = NULL, *result = NULL;
    PyObject *encode = NULL, *h128 = NULL, *chunks = NULL;

    gen = PyObject_GetAttr(walker, str_wgen);
    gparts = gen != NULL ? PyObject_GetAttr(group, str_parts) : NULL;
    gkeys = gparts != NULL ? PyObject_GetAttr(group, str_keys) : NULL;
    groups = gkeys != NULL ? PyObject_GetAttr(walker, str_groups) : NULL;
    if (groups == NULL) {
        goto done;
    }
    if (!PyList_CheckExact(gparts) || !PyList_CheckExact(gkeys) || !PyList_CheckExact(groups)) {
        PyErr_SetString(PyExc_TypeError, "group.parts, group.keys and walker.groups must be lists");
        goto done;
    }
    Py_ssize_t i = PyList_GET_SIZE(gparts), n = PyList_GET_SIZE(items);
    if (add_to(walker, str_hits, i) < 0 || PyList_Append(groups, group) < 0 ||
        PyObject_SetAttr(group, str_gen, gen) < 0) {
        goto done;
    }
    if (n > i) {
        Py_ssize_t m = n - i;
        if (PyBytes_GET_SIZE(tags) != 8 * m) {
            PyErr_SetString(PyExc_ValueError, "one tag per new item");
            goto done;
        }
        memo = item_memo(walker, path, marker);
        appended = memo != NULL ? PyList_New(0) : NULL;
        added = appended != NULL ? PyList_New(m) : NULL;
        if (added == NULL || PyObject_SetAttr(packer, str_trail, appended) < 0) {
            goto done;
        }
        /* What _item reads at every item, read once (the calls below run no code that rebinds them). */
        int in_c = PyDict_CheckExact(memo);
        encode = in_c ? PyObject_GetAttr(walker, str_encode) : NULL;
        h128 = encode != NULL ? PyObject_GetAttr(packer, str_h128) : NULL;
        chunks = h128 != NULL ? PyObject_GetAttr(packer, str_chunks) : NULL;
        if (chunks == NULL || !PyDict_Check(chunks)) {
            PyErr_Clear();
            in_c = 0; /* (an odd packer: _item says what is wrong) */
        }
        for (Py_ssize_t k = i; k < n; k++) {
            /* The agent's list: another of its threads may change it while _item runs (as v[k]
             * in Python, bounds-checked and held for the call). */
            PyObject *item = PyList_GetItem(items, k);
            Py_XINCREF(item);
            PyObject *index = item != NULL ? PyLong_FromSsize_t(k) : NULL;
            PyObject *entry = NULL;
            if (index != NULL && in_c) {
                entry = item_entry(walker, packer, encode, h128, chunks, gen, item, path, index, memo, appended);
            }
            else if (index != NULL) {
                PyObject *call[7] = {walker, packer, item, path, index, memo, appended};
                entry = PyObject_VectorcallMethod(str_item, call, 7, NULL);
            }
            Py_XDECREF(index);
            Py_XDECREF(item);
            if (entry == NULL || !PyList_CheckExact(entry) || PyList_GET_SIZE(entry) != 4) {
                if (entry != NULL) {
                    PyErr_SetString(PyExc_TypeError, "a memo entry is a list of 4");
                    Py_DECREF(entry);
                }
                PyObject *et, *ev, *etb;
                PyErr_Fetch(&et, &ev, &etb);
                if (PyObject_SetAttr(packer, str_trail, Py_None) < 0) {
                    PyErr_Clear();
                }
                PyErr_Restore(et, ev, etb);
                goto done;
            }
            PyList_SET_ITEM(added, k - i, entry);
        }
        if (PyObject_SetAttr(packer, str_trail, Py_None) < 0) {
            goto done;
        }
        parts = PyList_GetSlice(gparts, 0, i);
        keys = parts != NULL ? PyList_GetSlice(gkeys, 0, i) : NULL;
        if (keys == NULL) {
            goto done;
        }
        for (Py_ssize_t k = 0; k < m; k++) {
            PyObject *entry = PyList_GET_ITEM(added, k);
            if (PyList_Append(parts, PyList_GET_ITEM(entry, 0)) < 0 || PyList_Append(keys, PyList_GET_ITEM(entry, 3)) < 0) {
                goto done;
            }
        }
        /* the tag index, kept current for when items are dropped */
        PyObject *tagged = PyObject_GetAttr(walker, str_tagged);
        PyObject *known = tagged != NULL && PyDict_CheckExact(tagged) ? PyDict_GetItemWithError(tagged, path) : NULL;
        Py_XINCREF(known);
        Py_XDECREF(tagged);
        if (known == NULL && PyErr_Occurred()) {
            goto done;
        }
        if (known != NULL) {
            int bad = !PyList_CheckExact(known) || PyList_GET_SIZE(known) < 2 ||
                      !PyDict_CheckExact(PyList_GET_ITEM(known, 1)) || PyList_SetItem(known, 0, Py_NewRef(gen)) < 0;
            for (Py_ssize_t k = 0; !bad && k < m; k++) {
                unsigned long long t;
                memcpy(&t, PyBytes_AS_STRING(tags) + 8 * k, 8); /* native byte order, as _statecheck wrote it */
                PyObject *tag = PyLong_FromUnsignedLongLong(t);
                bad = tag == NULL || PyDict_SetItem(PyList_GET_ITEM(known, 1), tag, PyList_GET_ITEM(added, k)) < 0;
                Py_XDECREF(tag);
            }
            Py_DECREF(known);
            if (bad) {
                if (!PyErr_Occurred()) {
                    PyErr_SetString(PyExc_TypeError, "walker._tagged entry: [gen, dict]");
                }
                goto done;
            }
        }
        /* the group grows in place: group.tags += tags, then its parts, keys and chunks */
        PyObject *gtags = PyObject_GetAttr(group, str_tags);
        PyObject *grown = gtags != NULL ? PySequence_InPlaceConcat(gtags, tags) : NULL;
        int bad = grown == NULL || PyObject_SetAttr(group, str_tags, grown) < 0;
        Py_XDECREF(gtags);
        Py_XDECREF(grown);
        if (bad) {
            goto done;
        }
        PyObject *new_parts = PyList_GetSlice(parts, i, n), *new_keys = PyList_GetSlice(keys, i, n);
        bad = new_parts == NULL || new_keys == NULL ||
              PyList_SetSlice(gparts, PyList_GET_SIZE(gparts), PyList_GET_SIZE(gparts), new_parts) < 0 ||
              PyList_SetSlice(gkeys, PyList_GET_SIZE(gkeys), PyList_GET_SIZE(gkeys), new_keys) < 0;
        Py_XDECREF(new_parts);
        Py_XDECREF(new_keys);
        if (bad || group_hold(group, appended) < 0) {
            goto done;
        }
    }
    else {
        parts = PyList_GetSlice(gparts, 0, i);
        keys = parts != NULL ? PyList_GetSlice(gkeys, 0, PyList_GET_SIZE(gkeys)) : NULL;
        if (keys == NULL) {
            goto done;
        }
    }
    paging = PyObject_GetAttr(walker, str_paging);
    if (paging == NULL) {
        goto done;
    }
    prev = PyDict_CheckExact(paging) ? PyDict_GetItemWithError(paging, path) : NULL;
    if (prev == NULL) {
        if (PyErr_Occurred() || !PyDict_CheckExact(paging)) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "walker._paging is not a dict");
            }
            goto done;
        }
        prev = PyList_New(0);
        if (prev == NULL || PyDict_SetItem(paging, path, prev) < 0) {
            goto done;
        }
    }
    else {
        Py_INCREF(prev);
    }
    result = small_list(packer, parts);
    if (result == NULL && !PyErr_Occurred()) {
        result = PyObject_CallMethodObjArgs(packer, str_paged, str_l, parts, keys, prev, group, NULL);
    }
    if (result != NULL && PyObject_IsTrue(prev) > 0 && PyList_Append(prev, gen) < 0) {
        Py_CLEAR(result);
    }
done:
    Py_XDECREF(encode);
    Py_XDECREF(h128);
    Py_XDECREF(chunks);
    Py_XDECREF(gen);
    Py_XDECREF(gparts);
    Py_XDECREF(gkeys);
    Py_XDECREF(parts);
    Py_XDECREF(keys);
    Py_XDECREF(groups);
    Py_XDECREF(memo);
    Py_XDECREF(appended);
    Py_XDECREF(added);
    Py_XDECREF(paging);
    Py_XDECREF(prev);
    return result;
}

static PyMethodDef module_methods[] = {
    {"paged_grown", (PyCFunction)(void (*)(void))paged_grown, METH_FASTCALL,
     "paged_grown(packer, parts, keys, prev, group) -> bytes | None: _Packer.paged of a list that grew."},
    {"walk_grown", (PyCFunction)(void (*)(void))walk_grown, METH_FASTCALL,
     "walk_grown(walker, packer, items, path, group, tags, item_marker) -> bytes: _Walker._grown."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "flightrec._paging", "The paging of a list that grew, in C (see the source).", -1,
    module_methods,
};

PyMODINIT_FUNC
PyInit__paging(void)
{
    str_chunks = PyUnicode_InternFromString("chunks");
    str_trail = PyUnicode_InternFromString("trail");
    str_max_chunk = PyUnicode_InternFromString("max_chunk");
    str_h128 = PyUnicode_InternFromString("_h128");
    str_cat = PyUnicode_InternFromString("_cat");
    str_l = PyUnicode_InternFromString("l");
    if (!str_chunks || !str_trail || !str_max_chunk || !str_h128 || !str_cat || !str_l) {
        return NULL;
    }
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&str_gen, "gen"}, {&str_wgen, "_gen"}, {&str_hits, "hits"}, {&str_groups, "groups"}, {&str_parts, "parts"}, {&str_keys, "keys"},
        {&str_memo, "_memo"}, {&str_context, "_context"}, {&str_item, "_item"}, {&str_tagged, "_tagged"},
        {&str_tags, "tags"}, {&str_size, "size"}, {&str_paging, "_paging"}, {&str_paged, "paged"},
        {&str_unit, "_unit"}, {&str_encode, "_encode"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL) {
            return NULL;
        }
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
    PyObject *constants = Py_BuildValue("(iiiiii)", MIN_CHUNK, PAGE_MAX, BOUNDARY_MASK, INLINE_TAIL_MAX, EXT_CAT, REF_LEN);
    if (constants == NULL || PyModule_AddObject(m, "CONSTANTS", constants) < 0) {
        Py_XDECREF(constants);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
