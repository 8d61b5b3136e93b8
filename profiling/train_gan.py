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
    args, (x, c), test, data_rng = session.setup(
        "profiling.train_gan", __doc__.splitlines()[0], argv
    )
    from fastgen.demo import TAIL_BOUND, models, train
    from fastgen.metrics import sinkhorn_divergence
    from fastgen.tracing import annotate

    generator_net = models.Generator(TAIL_BOUND).to(args.device)
    critic = models.Critic().to(args.device)
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
            fake = generator_net(test[1], generator=noise_rng)
            sinkhorn_divergence(test[0], fake, backend=args.backend)

    return session.run(trainer.step, finish, args)


if __name__ == "__main__":
    main(sys.argv[1:])
