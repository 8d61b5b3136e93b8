"""Training-step time of the demo's three models at 1 and 2 intra-op threads: the measurement
behind the demo's one-thread rule (:data:`fastgen.demo.experiment.LARGEST_OP_ELEMENTS`).

``python -m profiling.demo_threads [--repeats R] [--steps S]``: for each repeat, for 1 then 2
threads, each trainer (flow, VAE, WGAN-GP at the demo's batch sizes, seed 0's training split)
takes 3 warm-up steps and ``S`` timed ones; prints the medians over repeats and the ratio
(2 threads / 1). Interleaving the thread counts within each repeat puts both under the same
machine load.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

THREAD_COUNTS = (1, 2)


def _trainers() -> dict:
    from fastgen.demo import TAIL_BOUND, data, experiment, models, train

    _, split, _ = data.load(0, TAIL_BOUND)
    x, c, rng, steps = split.latent, split.conditions, torch.Generator().manual_seed(0), 10**6
    batch = experiment.LIKELIHOOD_BATCH_SIZE
    noise_rng = torch.Generator().manual_seed(0)
    return {
        "flow": train.FlowTrainer(models.make_flow(TAIL_BOUND), x, c, batch, rng, steps),
        "vae": train.VaeTrainer(models.make_vae(TAIL_BOUND), x, c, batch, rng, steps),
        "gan": train.GanTrainer(
            models.Generator(TAIL_BOUND),
            models.Critic(),
            x,
            c,
            train.GAN_BATCH_SIZE,
            rng,
            noise_rng,
            "auto",
            steps,
        ),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m profiling.demo_threads")
    parser.add_argument("--repeats", type=int, default=5, help="repeats (default 5)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    trainers = _trainers()
    seconds = {(name, n): [] for name in trainers for n in THREAD_COUNTS}
    previous = torch.get_num_threads()
    try:
        for _ in range(args.repeats):
            for n in THREAD_COUNTS:
                torch.set_num_threads(n)
                for name, trainer in trainers.items():
                    for _ in range(3):
                        trainer.step()
                    start = time.perf_counter()
                    for _ in range(args.steps):
                        trainer.step()
                    seconds[name, n].append((time.perf_counter() - start) / args.steps)
    finally:
        torch.set_num_threads(previous)
    result = {}
    for name in trainers:
        one, two = (statistics.median(seconds[name, n]) for n in THREAD_COUNTS)
        result[name] = {"1": one, "2": two, "ratio": two / one}
        times = f"{one * 1e3:.2f} ms/step at 1 thread, {two * 1e3:.2f} at 2"
        print(f"{name}: {times}, ratio {two / one:.2f}")
    return result


if __name__ == "__main__":
    main()
