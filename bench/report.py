"""Same-run ratios from a saved pytest-benchmark JSON.

``pytest bench/ --benchmark-json out.json`` then ``python -m bench.report out.json``: for each
benchmark group (one size, direction and device of one suite) the median time of fastgen's
provider (``fastgen-auto``, else the first ``fastgen-*``) next to every other provider's, and
the speed-up ``peer median / fastgen median`` (above 1: fastgen is faster). Ratios are only
meaningful within one run on one machine; groups without a fastgen provider or a peer are
skipped.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


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
        if not ours:
            continue
        base = "fastgen-auto" if "fastgen-auto" in ours else ours[0]
        for peer in sorted(p for p in medians if not p.startswith("fastgen")):
            rows.append((group, base, peer, medians[base], medians[peer]))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("json", type=Path, help="a pytest-benchmark --benchmark-json file")
    args = parser.parse_args(argv)
    rows = ratios(json.loads(args.json.read_text()))
    if not rows:
        parser.error(f"{args.json}: no group holds both a fastgen provider and a peer")
    print("| group | fastgen | peer | fastgen median (ms) | peer median (ms) | speed-up |")
    print("|---|---|---|---|---|---|")
    for group, base, peer, ours, theirs in rows:
        print(f"| {group} | {base} | {peer} | {ours * 1e3:.3f} | {theirs * 1e3:.3f} | "
              f"{theirs / ours:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
