"""Profile the demo's conditional neural spline flow training loop (fastgen's spline and
masked-linear hot paths).

``python -m profiling.train_flow [--steps N] [--batch B] [--device cpu|cuda]
[--backend auto|torch|triton] [--trace PATH]``: each step is one maximum-likelihood Adam
step on the embedded muon bundles (:mod:`fastgen.demo.train`); the held-out NLL closes the
profile as the metric evaluation. See :mod:`profiling.session` for what is printed.
"""

from __future__ import annotations

import sys

import torch

from profiling import session


def main(argv=None) -> dict:
    args, (x, c), test, data_rng = session.setup(
        "profiling.train_flow", __doc__.splitlines()[0], argv
    )
    from fastgen.demo import TAIL_BOUND, models, train
    from fastgen.tracing import annotate

    flow = models.make_flow(TAIL_BOUND, backend=args.backend).to(args.device)
    trainer = train.FlowTrainer(flow, x, c, args.batch, data_rng, total_steps=args.steps)

    def finish():
        with annotate("evaluate.metrics"), torch.no_grad():
            flow.log_prob(test[0], context=test[1]).mean()

    return session.run(trainer.step, finish, args)


if __name__ == "__main__":
    main(sys.argv[1:])
