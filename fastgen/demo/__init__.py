"""``fastgen demo``: a conditional neural spline flow, a conditional WGAN-GP and a conditional
VAE learn the muon-bundle distribution (radius, azimuth, log energy given the bundle's zenith
and multiplicity; :mod:`fastgen.data`), and :func:`fastgen.evaluation.evaluate` judges their
samples against held-out bundles, next to a baseline Gaussian conditioned linearly on the
conditions. The GAN's checkpoint is chosen, over its checkpoints and several independent
trainings, on a validation split of the training bundles.

Modules: :mod:`.data` (splits and the latent map), :mod:`.models`, :mod:`.train` (training
loops, checkpoint selection), :mod:`.experiment` (the experiment over seeds: :func:`run`,
:class:`DemoResult`), :mod:`.report` (table, progress bars, figures; needs the demo extra).

Outputs in ``out``: ``results.json`` (every seed's numbers, their mean and standard deviation,
the settings), ``marginals.png``, ``radius_energy.png`` and ``gan_validation.png``.
"""

from fastgen.demo.data import TAIL_BOUND
from fastgen.demo.experiment import DemoResult, SeedResult, run, run_seed

__all__ = ["TAIL_BOUND", "DemoResult", "SeedResult", "run", "run_seed"]
