"""The profiling tools on tiny sizes: ranges in traces, the training-loop profiles, the
same-run ratio report. Nothing here is timed."""

import json

import torch

from bench.report import ratios
from fastgen.tracing import annotate


def _names(prof) -> list[str]:
    return [event.name for event in prof.events()]


def test_annotate_opens_ranges_only_under_the_profiler():
    @annotate("fastgen.test_decorated")
    def decorated(x):
        return x * 2

    with torch.profiler.profile() as prof:
        with annotate("fastgen.test_block"):
            decorated(torch.ones(3))
            decorated(torch.ones(3))
    names = _names(prof)
    assert names.count("fastgen.test_block") == 1
    assert names.count("fastgen.test_decorated") == 2
    block = annotate("fastgen.outside")
    with block:  # no profiler: nothing is opened
        assert block._ranges is None
    assert decorated(torch.ones(1)).item() == 2


def test_train_gan_profile_writes_a_trace_with_every_range(tmp_path):
    from profiling import train_gan

    trace = tmp_path / "gan.json"
    totals = train_gan.main(["--steps", "1", "--batch", "16", "--trace", str(trace)])
    names = {event["name"] for event in json.loads(trace.read_text())["traceEvents"]}
    expected = {
        "train.forward",
        "train.loss",
        "train.backward",
        "train.optimizer_step",
        "evaluate.metrics",
        "fastgen.interpolate",
        "fastgen.penalty_from_gradients",
        "fastgen.sinkhorn",
    }
    assert expected <= names
    assert expected <= set(totals) and all(value > 0 for value in totals.values())


def test_bench_report_ratios():
    payload = {
        "benchmarks": [
            {"group": "g", "extra_info": {"provider": "fastgen-auto"}, "stats": {"median": 2.0}},
            {"group": "g", "extra_info": {"provider": "fastgen-torch"}, "stats": {"median": 3.0}},
            {"group": "g", "extra_info": {"provider": "nflows"}, "stats": {"median": 5.0}},
            {"group": "h", "extra_info": {"provider": "zuko"}, "stats": {"median": 1.0}},
        ]
    }
    assert ratios(payload) == [("g", "fastgen-auto", "nflows", 2.0, 5.0)]


def test_train_flow_profile_writes_a_trace_with_every_range(tmp_path):
    from profiling import train_flow

    trace = tmp_path / "flow.json"
    totals = train_flow.main(["--steps", "1", "--batch", "16", "--trace", str(trace)])
    names = {event["name"] for event in json.loads(trace.read_text())["traceEvents"]}
    expected = {
        "train.forward",
        "train.loss",
        "train.backward",
        "train.optimizer_step",
        "evaluate.metrics",
        "fastgen.rq_spline",
        "fastgen.masked_linear",
    }
    assert expected <= names
    assert expected <= set(totals)
