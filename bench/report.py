"""Same-run ratios from a saved pytest-benchmark JSON.

``pytest bench/ --benchmark-json out.json`` then ``python -m bench.report out.json`` prints:

* the machine: CPU model (name, family / model number, logical cores), torch version and the
  intra-op thread counts the benchmarks ran with (``extra_info["threads"]``, else the
  session's ``torch_num_threads``);
* for each benchmark group (one size, direction and device of one suite), fastgen's eager
  provider (``fastgen-auto``, else the first ``fastgen-*``) and each compiled one
  (``fastgen+compile``) against each peer (``nflows``, ``zuko+compile``, ...): both medians
  and the speed-up ``peer median / fastgen median`` (above 1: fastgen is faster);
* the compile times of the ``+compile`` providers (``extra_info["compile_s"]``: the first
  call's excess over the median, never part of the medians).

Ratios are only meaningful within one run on one machine; groups without a fastgen provider
or a peer are skipped. For the 1- and 2-thread tables run the suite twice, with
``FASTGEN_NUM_THREADS=1`` and ``2``, and report each JSON.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def _describe(cpu: dict) -> str:
    """``name (family F model M, N logical cores)`` from a py-cpuinfo dict."""
    model = f"family {cpu['family']} model {cpu['model']}" if "model" in cpu else "model ?"
    return f"{cpu.get('brand_raw', 'unknown CPU')} ({model}, {cpu.get('count', '?')} logical cores)"


def cpu_name() -> str:
    """This machine's CPU as :func:`machine` names it (py-cpuinfo, pytest-benchmark's own
    source of ``machine_info["cpu"]``)."""
    import cpuinfo

    return _describe(cpuinfo.get_cpu_info())


def machine(payload: dict) -> str:
    """One line naming the CPU, torch and the thread counts of the run."""
    info = payload.get("machine_info", {})
    threads = sorted(
        {
            b["extra_info"]["threads"]
            for b in payload["benchmarks"]
            if "threads" in b.get("extra_info", {})
        }
    ) or [info.get("torch_num_threads", "?")]
    return (
        f"CPU: {_describe(info.get('cpu', {}))}; torch {info.get('torch', '?')}; "
        f"intra-op threads: {', '.join(map(str, threads))}"
    )


def ratios(payload: dict) -> list[tuple[str, str, str, float, float]]:
    """``(group, fastgen provider, peer, fastgen median, peer median)`` rows, seconds."""
    groups = defaultdict(dict)
    for bench in payload["benchmarks"]:
        provider = bench.get("extra_info", {}).get("provider")
        if provider is not None and bench.get("stats"):
            groups[bench["group"]][provider] = bench["stats"]["median"]
    rows = []
    for group, medians in sorted(groups.items()):
        ours = sorted(p for p in medians if p.startswith("fastgen"))
        eager = [p for p in ours if not p.endswith("+compile")]
        # on CPU fastgen-auto and fastgen-torch run the same code: auto stands for both
        bases = (["fastgen-auto"] if "fastgen-auto" in eager else eager[:1]) + [
            p for p in ours if p.endswith("+compile")
        ]
        peers = sorted(p for p in medians if not p.startswith("fastgen"))
        for base in bases:
            for peer in peers:
                rows.append((group, base, peer, medians[base], medians[peer]))
    return rows


def compile_times(payload: dict) -> list[tuple[str, str, float]]:
    """``(group, provider, seconds)`` for every benchmark that recorded ``compile_s``."""
    return sorted(
        (b["group"], b["extra_info"]["provider"], b["extra_info"]["compile_s"])
        for b in payload["benchmarks"]
        if "compile_s" in b.get("extra_info", {})
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("json", type=Path, help="a pytest-benchmark --benchmark-json file")
    args = parser.parse_args(argv)
    payload = json.loads(args.json.read_text())
    rows = ratios(payload)
    if not rows:
        parser.error(f"{args.json}: no group holds both a fastgen provider and a peer")
    print(machine(payload))
    print()
    print("| group | fastgen | peer | fastgen median (ms) | peer median (ms) | speed-up |")
    print("|---|---|---|---|---|---|")
    for group, base, peer, ours, theirs in rows:
        print(
            f"| {group} | {base} | {peer} | {ours * 1e3:.3f} | {theirs * 1e3:.3f} | "
            f"{theirs / ours:.2f}x |"
        )
    compiled = compile_times(payload)
    if compiled:
        print()
        print("| group | provider | compile time (s) |")
        print("|---|---|---|")
        for group, provider, seconds in compiled:
            print(f"| {group} | {provider} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
