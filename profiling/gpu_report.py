"""Static GPU resource report: every Triton kernel compiled ahead of time, no GPU needed.

``python -m profiling.gpu_report [--json] [--arch N]`` compiles every kernel's representative
configurations for sm_80 and sm_90 and prints, per kernel and configuration, registers per
thread, spilled bytes, shared memory and whether tensor-core instructions (mma / wgmma)
appear; it exits non-zero when a kernel spills or a ``@triton.jit`` function is compiled by
no configuration. The work is :mod:`profiling.aot`'s, run in a subprocess: kernels decorated
under ``TRITON_INTERPRET=1`` cannot be compiled, and from a scratch directory so that the
installed ``fastgen`` (with its ``kernels`` subpackage) is the one imported; the repository
root is appended to ``sys.path`` (after site-packages) for ``profiling`` itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from profiling import module_command


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    with tempfile.TemporaryDirectory() as scratch:
        return subprocess.run(
            module_command("profiling.aot", *argv), cwd=scratch, env=env
        ).returncode


if __name__ == "__main__":
    sys.exit(main())
