"""The specialisations the kernel launchers create at run time, recorded from the test suite.

On a GPU, Triton compiles one variant of a kernel per *specialisation key*: the constexpr
values, the dtype of each pointer, whether each pointer and each integer is divisible by 16,
and integers equal to 1 (made constants). The ahead-of-time check must compile those
variants, not hand-picked ones: a size that happens to be 1 or a multiple of 16 changes the
code, and its register use.

This pytest plugin wraps Triton's interpreter launch and records, for every launch of the
suite, the key the JIT would have specialised on, computed by Triton's own
``native_specialize_impl`` (as ``JITFunction.run`` does), plus ``num_warps``. Keys are
deduplicated and written as JSON: ``{"triton": version, "keys": [{"kernel": "module:name",
"signature": {arg: type | "constexpr"}, "constexprs": {arg: value}, "divisible": [args],
"num_warps": n}, ...]}``.

``python -m profiling.aot_keys [--out profiling/aot_keys.json]`` runs the kernel test files
under the interpreter with the plugin and writes the file that ``profiling.aot --runtime``
compiles (regenerate it when a launcher or a kernel signature changes).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

from profiling import module_command

ROOT = Path(__file__).resolve().parents[1]
KEYS_FILE = ROOT / "profiling" / "aot_keys.json"
KERNEL_TEST_FILES = (
    "tests/test_splines_triton.py",
    "tests/test_masked_linear_triton.py",
    "tests/test_gradient_penalty_triton.py",
    "tests/test_sinkhorn_triton.py",
    "tests/test_mmd.py",
    "tests/test_newton_schulz.py",
    "tests/test_knn_triton.py",
)


# Constexprs the launchers set only under the interpreter, with their value on a GPU: the
# masked linear widens bfloat16 dot operands for the interpreter's tl.dot.
INTERPRETER_ONLY = {"UPCAST": False}


def _plain(value):
    """A constexpr value as JSON (``tl.constexpr`` wrappers unwrapped)."""
    value = getattr(value, "value", value)
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    raise TypeError(f"constexpr value {value!r} of type {type(value).__name__} has no JSON form")


def launch_key(fn, args, kwargs) -> dict:
    """The specialisation key of launching the Python kernel ``fn`` with ``args`` and
    ``kwargs`` (launch options such as ``num_warps`` among them)."""
    from triton.backends.compiler import BaseBackend
    from triton.runtime.jit import native_specialize_impl

    parameters = inspect.signature(fn).parameters
    options = {k: kwargs.pop(k) for k in list(kwargs) if k not in parameters}
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    signature, constexprs, divisible = {}, {}, []
    for name, value in bound.arguments.items():
        annotation = parameters[name].annotation
        if "constexpr" in str(annotation):
            signature[name] = "constexpr"
            constexprs[name] = _plain(value)
            continue
        kind, attribute = native_specialize_impl(BaseBackend, value, False, True, True)
        signature[name] = kind
        if kind == "constexpr":  # an integer equal to 1
            constexprs[name] = _plain(attribute)
        elif attribute == "D":
            divisible.append(name)
    return {
        "kernel": f"{fn.__module__}:{fn.__name__}",
        "signature": signature,
        "constexprs": constexprs | {k: v for k, v in INTERPRETER_ONLY.items() if k in constexprs},
        "divisible": divisible,
        "num_warps": int(options.get("num_warps", 4)),
    }


class Recorder:
    """Wraps ``InterpretedFunction.run`` while installed and collects unique keys."""

    def __init__(self):
        self.keys: dict[str, dict] = {}

    def install(self):
        from triton.runtime.interpreter import InterpretedFunction

        original = InterpretedFunction.run
        recorder = self

        def run(self, *args, grid, warmup, **kwargs):
            key = launch_key(self.fn, args, dict(kwargs))
            recorder.keys.setdefault(json.dumps(key, sort_keys=True), key)
            return original(self, *args, grid=grid, warmup=warmup, **kwargs)

        InterpretedFunction.run = run

    def write(self, path: Path):
        import triton

        keys = sorted(self.keys.values(), key=lambda k: json.dumps(k, sort_keys=True))
        payload = {"triton": triton.__version__, "keys": keys}
        path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")


def pytest_addoption(parser):
    parser.addoption("--aot-keys", help="record the kernels' specialisation keys to this file")


def pytest_configure(config):
    path = config.getoption("--aot-keys")
    if path:
        if os.environ.get("TRITON_INTERPRET", "").lower() not in ("1", "y", "yes", "on", "true"):
            raise RuntimeError("--aot-keys records launches under TRITON_INTERPRET=1 only")
        config._aot_keys = (Recorder(), Path(path))
        config._aot_keys[0].install()


def pytest_unconfigure(config):
    recorder = getattr(config, "_aot_keys", None)
    if recorder is not None:
        recorder[0].write(recorder[1])


def load(path: Path = KEYS_FILE) -> list[dict]:
    """The recorded keys, unique."""
    keys = json.loads(Path(path).read_text())["keys"]
    return list({json.dumps(key, sort_keys=True): key for key in keys}.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profiling.aot_keys", description=__doc__)
    parser.add_argument("--out", type=Path, default=KEYS_FILE)
    args = parser.parse_args(argv)
    env = dict(os.environ, TRITON_INTERPRET="1")
    command = module_command(
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "profiling.aot_keys",
        f"--aot-keys={args.out.resolve()}",
        *KERNEL_TEST_FILES,
    )
    result = subprocess.run(command, cwd=ROOT, env=env)
    if result.returncode == 0:
        print(f"{len(load(args.out))} keys written to {args.out}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
