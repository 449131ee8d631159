"""Anomaly scores from a VAE trained on normal images only; any model with ``encode``/``decode`` works.

A VAE fitted to normal data reconstructs normal images well and anomalies poorly, gives anomalies
a low ELBO, and encodes them away from where the normal images lie. Each of these is a score,
higher meaning more anomalous:

- ``mse`` and ``bce``: the per-pixel mean error of the *mean* reconstruction decode(mu), which is
  deterministic, unlike a reconstruction from a sampled z (``bce`` of grey levels rather than
  binary pixels keeps a floor that depends on the image itself: notebook 02, section 5);
- ``neg_elbo``: -ELBO = reconstruction loss + KL, the probabilistic score (Monte Carlo over z);
- ``latent_mahalanobis``: the Mahalanobis distance of mu to a Gaussian fitted on the training
  normals' mu, the feature-based score.

:func:`encoder_statistics` gives the per-channel moments at every depth of the encoder, for a
score that reads what mu has summarised away. :func:`combined_score` averages the scores of
several models, each standardised on held-out normal images. Choosing a threshold from any score
is ``metrics.detection_report``'s job: on validation data, applied unchanged to the test set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nbhelpers import metrics
from nbhelpers.data.core import TensorImageDataset
from nbhelpers.metrics import ArrayLike
from nbhelpers.training.device import module_device
from nbhelpers.training.inference import eval_batches, evaluated, evaluating
from nbhelpers.training.vae import negative_elbo, reconstruction_loss


@dataclass
class VAEOutputs:
    """A VAE's view of a set of images, all on the CPU: inputs, mean reconstructions, posteriors, -ELBO."""

    images: torch.Tensor  # (N, C, H, W) in [0, 1]
    recon: torch.Tensor  # decode(mu), same shape
    mu: torch.Tensor  # (N, latent_dim)
    logvar: torch.Tensor
    neg_elbo: torch.Tensor  # (N,)
    labels: torch.Tensor | None


def run_vae(model: nn.Module, data: TensorImageDataset | torch.Tensor, *, recon: str = "bce",
            elbo_samples: int = 8, batch_size: int = 128, seed: int = 0) -> VAEOutputs:
    """Encode every image of ``data`` (without its training augmentation) and decode the posterior means.

    -ELBO uses the reconstruction loss the model was trained with and ``elbo_samples`` draws of z
    under a fixed ``seed``, so that scores repeat; the global RNG is forked, so it is left as it was.
    Under ``NBH_MAX_EVAL_ITEMS`` only a few images are run: every field holds those.
    """
    images, labels = data.tensors() if isinstance(data, TensorImageDataset) else (data, None)
    images, labels = evaluated(images), None if labels is None else evaluated(labels)
    device = module_device(model)
    parts: dict[str, list[torch.Tensor]] = {"recon": [], "mu": [], "logvar": [], "neg_elbo": []}
    with evaluating(model), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for x in images.split(batch_size):  # already the evaluated ones
            x = x.to(device)
            mu, logvar = model.encode(x)
            parts["recon"].append(model.decode(mu).cpu())
            parts["mu"].append(mu.cpu())
            parts["logvar"].append(logvar.cpu())
            parts["neg_elbo"].append(negative_elbo(model, x, recon=recon, samples=elbo_samples,
                                                   posterior=(mu, logvar)).cpu())
    return VAEOutputs(images=images, labels=labels, **{k: torch.cat(v) for k, v in parts.items()})


def encoder_statistics(model: nn.Module, images: torch.Tensor, *, batch_size: int = 128) -> list[torch.Tensor]:
    """Per-channel mean and standard deviation of every ReLU output in ``model.encoder``, one (N, 2C) per depth.

    Pooling each feature map to its first two moments makes the description independent of
    where in the frame something sits, so a polyp anywhere shifts the same numbers. Under
    ``NBH_MAX_EVAL_ITEMS`` only a few images are run (those :func:`run_vae` runs).
    """
    device = module_device(model)
    levels: list[list[torch.Tensor]] = []

    def keep(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        levels[-1].append(torch.cat([out.mean((2, 3)), out.std((2, 3))], 1).cpu())

    relus = [m for m in model.encoder.modules() if isinstance(m, nn.ReLU)]
    hooks = [m.register_forward_hook(keep) for m in relus]
    try:
        with evaluating(model):
            for x in eval_batches(images, batch_size):
                levels.append([])
                model.encoder(x.to(device))
    finally:
        for h in hooks:
            h.remove()
    return [torch.cat(depth) for depth in zip(*levels, strict=True)]


def anomaly_scores(out: VAEOutputs, train_mu: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-image scores (higher = more anomalous): mse, bce, neg_elbo, latent_mahalanobis."""
    pixels = out.images[0].numel()
    return {
        "mse": metrics.mse(out.images, out.recon),
        "bce": (reconstruction_loss(out.recon, out.images, "bce") / pixels).numpy(),
        "neg_elbo": out.neg_elbo.numpy(),
        "latent_mahalanobis": metrics.mahalanobis(train_mu, out.mu),
    }


def reconstruction_quality(out: VAEOutputs) -> dict[str, np.ndarray]:
    """Per-image PSNR (dB), SSIM and MSE of the mean reconstructions."""
    return {"psnr": metrics.psnr(out.images, out.recon), "ssim": metrics.ssim(out.images, out.recon),
            "mse": metrics.mse(out.images, out.recon)}


def combined_score(references: Sequence[ArrayLike], scores: Sequence[ArrayLike]) -> np.ndarray:
    """The mean of several scores of the same items, each first standardised on its own normal references.

    Scores of different models live on different scales (a Mahalanobis distance in one latent
    space, a feature distance in another), so each is turned into a z-score with the mean and
    standard deviation of its ``references``, the same score on held-out *normal* data, and the
    z-scores are averaged (Aggarwal & Sathe, "Theoretical Foundations and Algorithms for Outlier
    Ensembles", SIGKDD Explorations 2015). The scores may have any shape, (N,) for images or
    (N, 1, H, W) for pixel maps; each item is scored on its own, so no test image moves another's score.
    """
    if len(references) != len(scores) or not scores:
        raise ValueError(f"combined_score needs one reference per score; got {len(references)} and {len(scores)}.")
    total = 0.0
    for ref, s in zip(references, scores, strict=True):
        ref = np.asarray(ref, np.float64)
        spread = ref.std()
        if not spread > 0:
            raise ValueError("combined_score: a reference set has no spread (a constant score or a single image); "
                             "standardise on at least two normal images whose scores differ.")
        total = total + (np.asarray(s, np.float64) - ref.mean()) / spread
    return total / len(scores)
