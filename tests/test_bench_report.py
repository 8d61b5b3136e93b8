"""bench.report: which providers it compares, the machine line and the compile times."""

from bench.report import compile_times, machine, ratios


def _bench(group, provider, median, **extra):
    return {
        "group": group,
        "extra_info": {"provider": provider, **extra},
        "stats": {"median": median},
    }


def test_eager_and_compiled_fastgen_against_every_peer():
    payload = {
        "benchmarks": [
            _bench("g", "fastgen-auto", 2.0, threads=1),
            _bench("g", "fastgen-torch", 3.0, threads=1),
            _bench("g", "fastgen+compile", 1.0, threads=1, compile_s=12.5),
            _bench("g", "nflows", 5.0, threads=1),
            _bench("g", "zuko+compile", 4.0, threads=1, compile_s=3.0),
            _bench("h", "zuko", 1.0, threads=2),
        ]
    }
    assert ratios(payload) == [
        ("g", "fastgen-auto", "nflows", 2.0, 5.0),
        ("g", "fastgen-auto", "zuko+compile", 2.0, 4.0),
        ("g", "fastgen+compile", "nflows", 1.0, 5.0),
        ("g", "fastgen+compile", "zuko+compile", 1.0, 4.0),
    ]
    assert compile_times(payload) == [("g", "fastgen+compile", 12.5), ("g", "zuko+compile", 3.0)]
    payload["machine_info"] = {
        "cpu": {"brand_raw": "Intel(R) Xeon(R) Processor", "family": 6, "model": 167, "count": 2},
        "torch": "2.13.0",
    }
    assert machine(payload) == (
        "CPU: Intel(R) Xeon(R) Processor (family 6 model 167, 2 logical "
        "cores); torch 2.13.0; intra-op threads: 1, 2"
    )
