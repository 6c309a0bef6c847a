/* flightrec._lock: the recorder's mutex, with an acquire and a release that cost a C call.
 *
 * Every recorded event takes the recorder's lock once. threading.Lock parses its arguments
 * with PyArg_ParseTupleAndKeywords on every acquire (even ``with lock:`` and ``acquire()``
 * with none): inside an agent's loop, whose own work has evicted that generic code from the
 * caches, this parse was a tenth of the instruction-cache misses of recording a step.
 *
 * Lock() behaves as threading.Lock does: not reentrant, ``acquire(blocking=True,
 * timeout=-1) -> bool``, ``release()`` (RuntimeError when unlocked), ``locked()``, and the
 * context manager. A blocking wait lets go of the interpreter lock and runs the signal
 * handlers when a signal interrupts it, as threading.Lock does. The uncontended acquire and
 * every release never let go of the interpreter lock.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <time.h>

typedef struct {
    PyObject_HEAD PyThread_type_lock lock;
    char locked;
} LockObject;

static long long
monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Take the lock: at once when it is free, else waiting up to timeout_us (-1: for ever) with
 * the interpreter lock let go. 1 taken, 0 timed out, -1 a signal handler raised. */
static int
take(LockObject *self, long long timeout_us)
{
    if (PyThread_acquire_lock_timed(self->lock, 0, 0) == PY_LOCK_ACQUIRED) {
        self->locked = 1;
        return 1;
    }
    if (timeout_us == 0) {
        return 0;
    }
    long long deadline = timeout_us > 0 ? monotonic_us() + timeout_us : 0;
    for (;;) {
        PyLockStatus r;
        Py_BEGIN_ALLOW_THREADS
        r = PyThread_acquire_lock_timed(self->lock, timeout_us, 1);
        Py_END_ALLOW_THREADS
        if (r == PY_LOCK_ACQUIRED) {
            self->locked = 1;
            return 1;
        }
        if (r == PY_LOCK_FAILURE) {
            return 0;
        }
        /* PY_LOCK_INTR: run the signal handlers (one may raise), then wait for what is left */
        if (Py_MakePendingCalls() < 0) {
            return -1;
        }
        if (timeout_us > 0) {
            timeout_us = deadline - monotonic_us();
            if (timeout_us <= 0) {
                return 0;
            }
        }
    }
}

static PyObject *
Lock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Lock() takes no arguments");
        return NULL;
    }
    LockObject *self = (LockObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->lock = PyThread_allocate_lock();
    self->locked = 0;
    if (self->lock == NULL) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_MemoryError, "cannot allocate a lock");
        return NULL;
    }
    return (PyObject *)self;
}

static void
Lock_dealloc(LockObject *self)
{
    if (self->lock != NULL) {
        if (self->locked) {
            PyThread_release_lock(self->lock);
        }
        PyThread_free_lock(self->lock);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* acquire(blocking=True, timeout=-1) -> bool */
static PyObject *
Lock_acquire(LockObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && kwnames == NULL) { /* the usual call: no argument to look at */
        int got = take(self, -1);
        return got < 0 ? NULL : PyBool_FromLong(got);
    }
    PyObject *blocking = NULL, *timeout = NULL;
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "acquire() takes at most 2 arguments");
        return NULL;
    }
    blocking = nargs > 0 ? args[0] : NULL;
    timeout = nargs > 1 ? args[1] : NULL;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        PyObject **slot = PyUnicode_CompareWithASCIIString(name, "blocking") == 0  ? &blocking
                          : PyUnicode_CompareWithASCIIString(name, "timeout") == 0 ? &timeout
                                                                                    : NULL;
        if (slot == NULL || *slot != NULL) {
            PyErr_Format(PyExc_TypeError, "acquire() got %s keyword argument '%U'",
                         slot == NULL ? "an unexpected" : "multiple values for", name);
            return NULL;
        }
        *slot = args[nargs + i];
    }
    int block = 1;
    if (blocking != NULL && (block = PyObject_IsTrue(blocking)) < 0) {
        return NULL;
    }
    double seconds = -1.0;
    if (timeout != NULL && (seconds = PyFloat_AsDouble(timeout)) == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (!block && seconds != -1.0) {
        PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
        return NULL;
    }
    if (seconds < 0 && seconds != -1.0) {
        PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
        return NULL;
    }
    if (seconds > (double)PY_TIMEOUT_MAX / 1e6) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return NULL;
    }
    long long timeout_us = !block ? 0 : seconds < 0 ? -1 : (long long)(seconds * 1e6);
    int got = take(self, timeout_us);
    return got < 0 ? NULL : PyBool_FromLong(got);
}

static PyObject *
Lock_enter(LockObject *self, PyObject *Py_UNUSED(ignored))
{
    int got = take(self, -1);
    return got < 0 ? NULL : PyBool_FromLong(got);
}

static PyObject *
Lock_release(LockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->locked) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return NULL;
    }
    self->locked = 0;
    PyThread_release_lock(self->lock);
    Py_RETURN_NONE;
}

static PyObject *
Lock_exit(LockObject *self, PyObject *const *Py_UNUSED(args), Py_ssize_t Py_UNUSED(nargs))
{
    return Lock_release(self, NULL);
}

static PyObject *
Lock_locked(LockObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->locked);
}

static PyObject *
Lock_repr(LockObject *self)
{
    return PyUnicode_FromFormat("<%s %s object at %p>", self->locked ? "locked" : "unlocked",
                                Py_TYPE(self)->tp_name, self);
}

static PyMethodDef Lock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))Lock_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire($self, /, blocking=True, timeout=-1)\n--\n\n"
     "Take the lock, waiting if ``blocking`` (at most ``timeout`` seconds); whether it was taken."},
    {"release", (PyCFunction)Lock_release, METH_NOARGS, "Let go of the lock (RuntimeError if it is not held)."},
    {"locked", (PyCFunction)Lock_locked, METH_NOARGS, "Whether the lock is held."},
    {"__enter__", (PyCFunction)Lock_enter, METH_NOARGS, "Take the lock, waiting for it."},
    {"__exit__", (PyCFunction)(void (*)(void))Lock_exit, METH_FASTCALL, "Let go of the lock."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LockType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "flightrec._lock.Lock",
    .tp_basicsize = sizeof(LockObject),
    .tp_dealloc = (destructor)Lock_dealloc,
    .tp_repr = (reprfunc)Lock_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Lock()\n--\n\nA mutex that behaves as threading.Lock, with a cheaper acquire and release.",
    .tp_methods = Lock_methods,
    .tp_new = Lock_new,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "flightrec._lock", "The recorder's mutex: threading.Lock without the argument parse.",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__lock(void)
{
    if (PyType_Ready(&LockType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&LockType);
    if (PyModule_AddObject(m, "Lock", (PyObject *)&LockType) < 0) {
        Py_DECREF(&LockType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
