#!/usr/bin/env bash
# The ahead-of-time tables under Triton 3.6 (the GPU image's: torch 2.11, Python 3.12), kept in
# profiling/aot_triton36.md: the representative configurations, then every specialisation the
# launchers create at run time (profiling/aot_keys.json). A virtual environment .venv36 holds
# triton==3.6.0 only; its .pth puts this Python's site directories (torch, numpy, ...) after it,
# so 3.6 shadows the installed Triton. From the repository root:
#   bash profiling/aot_triton36.sh [python]
set -euo pipefail
python=${1:-python}
if [ ! -x .venv36/bin/python ]; then
    "$python" -m venv .venv36
    # every site directory on that Python's path, not only its first: a virtual environment
    # layered on another by a .pth file has torch in the second
    "$python" -c 'import sys; print("\n".join(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))))' \
        > "$(.venv36/bin/python -c 'import site; print(site.getsitepackages()[0])')/base.pth"
    .venv36/bin/python -m pip install -q --no-deps triton==3.6.0
    .venv36/bin/python -m pip install -q --no-deps -e .
fi
version=$(.venv36/bin/python -c 'import triton; print(triton.__version__)')
case $version in 3.6.*) ;; *) echo "expected Triton 3.6 in .venv36, got $version" >&2; exit 1 ;; esac
report() { .venv36/bin/python -m profiling.gpu_report "$@" 2>&1 || true; }
{
    printf '# Ahead-of-time resources under Triton %s (the GPU image'"'"'s), sm_80 and sm_90\n\n' "$version"
    printf 'Written by `bash profiling/aot_triton36.sh`; regenerate it when a kernel or launcher\n'
    printf 'changes. Spilled bytes must be 0 everywhere (CI checks the same under its Triton),\n'
    printf 'with one accepted exception under 3.6: the k-NN kernels (`_knn_kernel`,\n'
    printf '`_ball_count_kernel`). Their register need sits just above the limit 3.6'"'"'s ptxas picks\n'
    printf 'by itself (48, 80 or 128 per thread at 8 warps), so it spills 8-16 B of values that live\n'
    printf 'outside the inner loop (the output row index, the X-row pointers, reloaded once per\n'
    printf 'tile of Y; read in the SASS). About 20 tile, warp, stage and code variants tried each\n'
    printf 'moved a spill to another variant or made one under 3.9; `maxnreg=255` was clean but\n'
    printf 'halves occupancy. Every other kernel is spill-free under 3.6 and 3.9.\n\n'
    printf '## Representative configurations\n\n'
    report
    printf '\n## Runtime specialisations (profiling/aot_keys.json): worst variant per kernel, then each\n\n'
    report --runtime --summary
} > profiling/aot_triton36.md
echo "wrote profiling/aot_triton36.md (Triton $version)"
