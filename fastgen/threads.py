"""How many intra-op threads a CPU workload should use (the rule the bench and the demo follow).

Small models run many small ops. Each parallel op ends at a barrier that waits for every
thread of PyTorch's pool, so when another process holds a core the whole op waits until the
descheduled thread runs again: the op takes a scheduler time slice instead of microseconds.
Measured on a 2-core Xeon (model 167) VM at a load average of 14, interleaved, medians of 7
(``fastgen`` reference path, float32):

=====================================  =========  ===========
workload                               1 thread   2 threads
=====================================  =========  ===========
NSF training step, batch 256           95 ms      5,800 ms
NSF training step, batch 2048          407 ms     10,300 ms
spline forward+backward, 2^16          85 ms      5,090 ms
spline forward+backward, 2^19          835 ms     7,180 ms
=====================================  =========  ===========

On an idle machine a second thread pays off only for large ops: on the 2-core EPYC of
issue 16, 2 threads ran the spline at 2^19 elements 1.4-1.9x faster, the NSF training step
(8 features, hidden 128, batch 2048; its largest op writes 2^18 elements) 1.06x, and the
default demo took 755 s with 2 threads beside one busy process against 325 s with 1.

The rule (:func:`recommended_threads`, applied by :func:`set_threads` unless the environment
variable ``FASTGEN_NUM_THREADS`` fixes the count): one thread unless the largest op of the workload
writes at least ``MIN_ELEMENTS_PER_THREAD`` elements per thread and cores are idle; then as
many threads as there are idle cores (by the 1-minute load average) and as the work fills.
"""

from __future__ import annotations

import os

import torch

from fastgen._checks import check_number

# Elements the largest op must write per thread before another thread is worth its barrier
# (2^19: see the table above; the NSF step's 2^18-element GEMMs gain 6% on an idle machine).
MIN_ELEMENTS_PER_THREAD = 2**19


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def idle_cores() -> int:
    """Available cores minus the runnable processes of the last minute other than this one
    (``os.getloadavg``), at least 1; all available cores where no load average exists."""
    cores = available_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, cores - round(max(0.0, load - 1.0))))


def recommended_threads(largest_op_elements: int) -> int:
    """Intra-op threads for a workload whose largest op writes ``largest_op_elements``
    elements: 1 for small ops, else up to one per ``MIN_ELEMENTS_PER_THREAD`` elements,
    capped by the idle cores.

    Raises:
        TypeError: ``largest_op_elements`` is not an integer.
        ValueError: it is negative.

    Example:
        >>> recommended_threads(2048 * 128)  # an NSF step's GEMM: one thread
        1
    """
    elements = check_number("largest_op_elements", largest_op_elements, minimum=0, integer=True)
    wanted = elements // MIN_ELEMENTS_PER_THREAD
    return 1 if wanted < 2 else min(wanted, idle_cores())


def set_threads(largest_op_elements: int) -> int:
    """Set PyTorch's intra-op threads to ``recommended_threads(largest_op_elements)``, or to
    the environment variable ``FASTGEN_NUM_THREADS`` when it is set (an explicit choice, e.g.
    the bench's 1- and 2-thread runs); returns the count.

    Raises:
        ValueError: ``FASTGEN_NUM_THREADS`` is not a positive integer.

    Example:
        >>> import torch
        >>> previous = torch.get_num_threads()
        >>> set_threads(1000)
        1
        >>> torch.set_num_threads(previous)
    """
    text = os.environ.get("FASTGEN_NUM_THREADS", "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"FASTGEN_NUM_THREADS must be a positive integer, got {text!r}")
        threads = int(text)
    else:
        threads = recommended_threads(largest_op_elements)
    torch.set_num_threads(threads)
    return threads
