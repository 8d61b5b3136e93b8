"""Sample-based evaluation metrics for generative models."""

from fastgen.metrics.frechet import FeatureStatistics as FeatureStatistics
from fastgen.metrics.frechet import FrechetDistance as FrechetDistance
from fastgen.metrics.frechet import calculate_frechet_distance as calculate_frechet_distance
from fastgen.metrics.frechet import frechet_distance as frechet_distance
from fastgen.metrics.kernel_distance import kernel_inception_distance as kernel_inception_distance
from fastgen.metrics.kernel_distance import mmd2_unbiased as mmd2_unbiased
from fastgen.metrics.physics import frechet_physics_distance as frechet_physics_distance
from fastgen.metrics.physics import kernel_physics_distance as kernel_physics_distance
