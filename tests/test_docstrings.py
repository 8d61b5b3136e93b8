"""The ``Example:`` blocks (doctest ``>>>`` form) of every public module of the installed
fastgen package run and print what they claim: one test per module, so that ``pytest`` (the
README's command, which CI runs) fails on a broken example and names its module.

Public: no part of the dotted name starts with an underscore. ``fastgen.kernels`` (installed
from ``kernels/``) needs Triton: its modules are skipped, with that reason, where it is not
installed. A module without examples passes (nothing to run).
"""

import doctest
import importlib
import importlib.util
import os
import pkgutil

import pytest

KERNELS = "fastgen.kernels"


def _walk(package: str, paths) -> list[str]:
    """Dotted names of the public modules under ``package`` (found without importing them)."""
    names = []
    for info in pkgutil.iter_modules(paths, f"{package}."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        names.append(info.name)
        if info.ispkg:
            leaf = info.name.rsplit(".", 1)[-1]
            names += _walk(info.name, [os.path.join(info.module_finder.path, leaf)])
    return names


def public_modules() -> list[str]:
    fastgen = importlib.util.find_spec("fastgen")
    names = ["fastgen", *_walk("fastgen", fastgen.submodule_search_locations)]
    # An editable install maps fastgen.kernels to kernels/, outside fastgen/'s directory.
    kernels = importlib.util.find_spec(KERNELS)
    if kernels is not None and KERNELS not in names:
        names += [KERNELS, *_walk(KERNELS, kernels.submodule_search_locations)]
    return sorted(names)


MODULES = public_modules()


def test_the_walk_finds_the_public_api():
    """A walk that silently found nothing would pass every doctest."""
    for name in ("fastgen", "fastgen.splines", "fastgen.gan", "fastgen.metrics", KERNELS):
        assert name in MODULES, f"{name} missing from {MODULES}"
    assert not [name for name in MODULES if "._" in name], "private modules are not walked"


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    if name.startswith(KERNELS):
        pytest.importorskip("triton", reason="triton is not installed (fastgen.kernels needs it)")
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    report, failed, attempted = [], 0, 0
    for test in doctest.DocTestFinder().find(module):
        result = runner.run(test, out=report.append)
        failed, attempted = failed + result.failed, attempted + result.attempted
    assert failed == 0, f"{failed} of {attempted} examples failed in {name}:\n" + "".join(report)
