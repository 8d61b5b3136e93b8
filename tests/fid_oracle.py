"""pytorch-fid's Fréchet distance (``pytorch_fid.fid_score.calculate_frechet_distance``)
written out with ``scipy.linalg.sqrtm`` in float64: the oracle of tests/test_frechet.py.
(SciPy >= 1.16 deprecates ``disp=False``; without it ``sqrtm`` returns the same matrix.)"""

import numpy as np
import scipy.linalg


def pytorch_fid_formula(mu1, sigma1, mu2, sigma2, eps=1e-6):
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def correlated_features(rng, n, d, shift=0.0, mix=None):
    """``(n, d)`` float64 features with a non-trivial covariance: N(0, I) rows through a
    random mixing matrix with decaying column scales, plus ``shift``."""
    if mix is None:
        mix = rng.standard_normal((d, d)) * np.linspace(1.0, 0.05, d)[None, :] / np.sqrt(d)
    return rng.standard_normal((n, d)) @ mix.T + shift
