"""Build hook for the optional C extension; everything else is in pyproject.toml.

``flightrec._fastpath`` is the common case of ``Recorder.record()`` in C. It is optional:
without a C compiler the build skips it (``optional=True``) and flightrec runs as pure
Python, with the same behaviour, only slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "flightrec._fastpath",
            sources=["flightrec/_fastpath.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
