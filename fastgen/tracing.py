"""Named ranges around fastgen's hot paths, for ``torch.profiler`` traces and NVIDIA Nsight.

``annotate(name)`` is a context manager and a decorator. Inside a ``torch.profiler``
session it opens a ``torch.profiler.record_function`` range (which traces and the profiler's
tables show); when NVTX ranges are switched on (:func:`enable_nvtx`, or the environment
variable ``FASTGEN_NVTX=1``) and the ``nvtx`` package imports, it also pushes an NVTX range
that Nsight Systems shows on the timeline. Otherwise it does nothing: one flag test per
call, so the library's hot paths carry their annotations at no cost. Under
``torch.compile`` it does nothing either (a range would break the graph).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os

import torch
import torch.autograd.profiler as autograd_profiler
from torch.profiler import record_function

_nvtx = None


def enable_nvtx(enabled: bool = True) -> bool:
    """Switch NVTX ranges on or off; returns whether they are on (off when the ``nvtx``
    package is not installed)."""
    global _nvtx
    _nvtx = None
    if enabled and importlib.util.find_spec("nvtx") is not None:
        import nvtx

        _nvtx = nvtx
    return _nvtx is not None


enable_nvtx(os.environ.get("FASTGEN_NVTX", "0") not in ("", "0"))


class annotate(contextlib.ContextDecorator):
    """``with annotate("fastgen.gan.gradient_penalty"): ...`` or ``@annotate(name)``: a
    profiler and NVTX range named ``name`` while profiling is on, nothing otherwise."""

    def __init__(self, name: str):
        self.name = name
        self._ranges = None

    def _recreate_cm(self):
        # as a decorator: a fresh instance per call, so calls may nest and run in threads
        return annotate(self.name)

    def __enter__(self):
        # Under torch.compile a range would break the graph (dynamo cannot trace
        # record_function's enter), so compiled code carries none: the profiler names the
        # compiled region itself. Tested first, so that the trace reads no profiler flag and
        # guards on none (switching the profiler on does not recompile).
        if torch.compiler.is_compiling():
            return self
        if autograd_profiler._is_profiler_enabled or _nvtx is not None:
            self._ranges = contextlib.ExitStack()
            if autograd_profiler._is_profiler_enabled:
                self._ranges.enter_context(record_function(self.name))
            if _nvtx is not None:
                self._ranges.enter_context(_nvtx.annotate(self.name))
        return self

    def __exit__(self, *exc):
        if self._ranges is not None:
            self._ranges.close()
            self._ranges = None
        return False
