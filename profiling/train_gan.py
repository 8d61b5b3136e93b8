"""Profile the demo's conditional WGAN-GP training loop (fastgen's gradient penalty).

``python -m profiling.train_gan [--steps N] [--batch B] [--device cpu|cuda]
[--backend auto|torch|triton] [--trace PATH]``: each step is 5 critic updates and one
generator update on the embedded muon bundles (:mod:`fastgen.demo.train`); a Sinkhorn
divergence of generated against held-out samples closes the profile as the metric
evaluation. See :mod:`profiling.session` for what is printed.
"""

from __future__ import annotations

import sys

import torch

from profiling import session


def main(argv=None) -> dict:
    parser = session.parser("profiling.train_gan", __doc__.splitlines()[0], batch=256)
    args = parser.parse_args(argv)
    session.check(args, parser)
    from fastgen.demo import TAIL_BOUND, models, train
    from fastgen.demo import data as demo_data
    from fastgen.metrics import sinkhorn_divergence
    from fastgen.profiling import annotate

    torch.manual_seed(args.seed)
    _, train_split, test_split = demo_data.load(args.seed, TAIL_BOUND)
    x, c = train_split.latent.to(args.device), train_split.conditions.to(args.device)
    generator_net = models.Generator(TAIL_BOUND).to(args.device)
    critic = models.Critic().to(args.device)
    data_rng = torch.Generator().manual_seed(args.seed)
    noise_rng = torch.Generator(args.device).manual_seed(args.seed)

    trainer = train.GanTrainer(
        generator_net,
        critic,
        x,
        c,
        args.batch,
        data_rng,
        noise_rng,
        args.backend,
        total_steps=args.steps,
    )

    def finish():
        with annotate("evaluate.metrics"), torch.no_grad():
            conditions = test_split.conditions.to(args.device)
            fake = generator_net(conditions, generator=noise_rng)
            sinkhorn_divergence(test_split.latent.to(args.device), fake, backend=args.backend)

    return session.run(trainer.step, finish, args)


if __name__ == "__main__":
    main(sys.argv[1:])
