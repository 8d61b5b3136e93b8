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
    parser = session.parser("profiling.train_flow", __doc__.splitlines()[0], batch=256)
    args = parser.parse_args(argv)
    session.check(args, parser)
    from fastgen.demo import TAIL_BOUND, models, train
    from fastgen.demo import data as demo_data
    from fastgen.profiling import annotate

    torch.manual_seed(args.seed)
    _, train_split, test_split = demo_data.load(args.seed, TAIL_BOUND)
    x, c = train_split.latent.to(args.device), train_split.conditions.to(args.device)
    flow = models.make_flow(TAIL_BOUND, backend=args.backend).to(args.device)
    data_rng = torch.Generator().manual_seed(args.seed)
    trainer = train.FlowTrainer(flow, x, c, args.batch, data_rng, total_steps=args.steps)

    def finish():
        with annotate("evaluate.metrics"), torch.no_grad():
            latent, conditions = test_split.latent.to(args.device), test_split.conditions
            flow.log_prob(latent, context=conditions.to(args.device)).mean()

    return session.run(trainer.step, finish, args)


if __name__ == "__main__":
    main(sys.argv[1:])
