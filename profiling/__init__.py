"""Developer tooling that does not ship with fastgen (``python -m profiling.<tool>``):
ahead-of-time compilation, the GPU check, memory traffic, training-loop profiles."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# `python -m` puts the working directory first on sys.path, where the source tree's fastgen/
# (which has no kernels/: pyproject maps them) would shadow the installed package. This runs
# the module with the repository root appended instead, after site-packages.
_RUN_MODULE = (
    "import runpy, sys; del sys.path[0]; sys.path.append({root!r}); "
    "runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
)


def module_command(module: str, *args: str) -> list[str]:
    """``python -m module *args`` for a subprocess, importing the installed ``fastgen`` and
    this repository's ``profiling`` whatever the working directory."""
    return [sys.executable, "-c", _RUN_MODULE.format(root=str(ROOT), module=module), *args]
