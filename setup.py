"""Build hook for the optional C extension; everything else is in pyproject.toml.

``flightrec._fastpath`` is the common case of ``Recorder.record()`` in C,
``flightrec._redact_native`` the match loop of the redactor, ``flightrec._statecheck``
the checkpoint's unchanged-item check (dict version tags), ``flightrec._paging`` the
paging of a list that grew, ``flightrec._store`` the checkpoint store's usual emission and
``flightrec._lock`` the recorder's mutex. All are optional: without a C
compiler the build skips them (``optional=True``) and flightrec runs as pure Python, with
the same behaviour, only slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "flightrec._fastpath",
            sources=["flightrec/_fastpath.c"],
            depends=["flightrec/_msgpack.h"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "flightrec._statecheck",
            sources=["flightrec/_statecheck.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "flightrec._paging",
            sources=["flightrec/_paging.c"],
            depends=["flightrec/_msgpack.h"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "flightrec._store",
            sources=["flightrec/_store.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "flightrec._lock",
            sources=["flightrec/_lock.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "flightrec._redact_native",
            sources=["flightrec/_redact_native.c"],
            depends=["flightrec/_msgpack.h"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
    ]
)
