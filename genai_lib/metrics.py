"""Measuring generated images with a small digit classifier.

A generator is good when its samples look like the data: each one should look
like a real digit, and together they should be spread like the real digits.
We measure both through a :class:`~genai_lib.models.DigitClassifier` trained
on the real images:

- **FD-digits** (:func:`fd_digits`): the Fréchet distance between real and
  generated images in the classifier's feature space. Fit a Gaussian to the
  features of each set (means mu_a, mu_b; covariances S_a, S_b); then

      FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})

  which is the squared 2-Wasserstein distance between the two Gaussians. It is
  FID (Heusel et al., 2017) with a small digit classifier in place of
  Inception-v3, so its values are **not** FIDs: they are comparable only
  between runs that use the same classifier (same weights) and the same sample
  sizes (the estimate is biased upwards, more so for few samples). To read a
  value, compare it with the real-versus-real floor, :func:`real_floor`.
- **Coverage** (:func:`class_coverage`): which classes the generated images
  are assigned to, and how evenly. A mode-collapsed GAN covers few classes.
- **Class accuracy** (:func:`class_accuracy`): for a conditional generator,
  the share of images the classifier assigns to the class that was asked for.

This module is the math alone: it imports torch and nothing that trains.
Getting the classifier (the pinned one that ships with the course, or one
trained and cached per machine) is :mod:`genai_lib.classifiers`; its
``load_or_train_classifier`` can also be imported from here. Images are
always ``(N, C, H, W)`` with pixel values in [0, 1], like
:class:`~genai_lib.data.ImageData`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from genai_lib import config

if TYPE_CHECKING:
    from genai_lib.data.images import ImageData

# a class is covered if it gets at least 10% of its uniform share, 1 / n_classes
COVERED_SHARE = 0.1

# Getting a classifier lives in genai_lib.classifiers (it trains one); these names are found there on first use,
# so that importing the metrics does not import the training loop.
_FROM_CLASSIFIERS = {
    "load_or_train_classifier",
    "load_pinned_classifier",
    "pin_classifier",
    "train_classifier",
    "classifier_cache_path",
    "random_shift",
    "PINNED_DIR",
    "PIN_COMMAND",
    "CACHE_FORMAT",
}


def __getattr__(name: str) -> Any:
    if name in _FROM_CLASSIFIERS:
        from genai_lib import classifiers

        return getattr(classifiers, name)
    raise AttributeError(f"module 'genai_lib.metrics' has no attribute {name!r}")


# ---------------------------------------------------------------- applying the classifier


@torch.no_grad()
def _apply(
    classifier: nn.Module, images: Tensor, what: str = "logits", batch_size: int = 1000
) -> Tensor:
    """``classifier`` (``what="logits"``) or ``classifier.features`` on ``images``, in eval mode, in batches.

    ``(N, C, H, W)`` in [0, 1] -> ``(N, K)`` on the CPU, float32.
    """
    if not isinstance(images, Tensor) or images.dim() != 4 or len(images) == 0:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"Expected a batch of images (N, C, H, W) with N >= 1; got {shape}.")
    low, high = images.min().item(), images.max().item()
    if not (low >= -1e-4 and high <= 1 + 1e-4):  # also catches NaN
        raise ValueError(
            f"The classifier expects pixel values in [0, 1]; these range over [{low:.3g}, {high:.3g}]. "
            f"Logits? Apply torch.sigmoid. Values in [-1, 1]? Use (x + 1) / 2."
        )
    fn = classifier if what == "logits" else classifier.features
    device, was_training = config.device_of(classifier), classifier.training
    classifier.eval()
    try:
        out = [
            fn(images[i : i + batch_size].to(device, torch.float32)).float().cpu()
            for i in range(0, len(images), batch_size)
        ]
    finally:
        classifier.train(was_training)
    return torch.cat(out)


def predict(classifier: nn.Module, images: Tensor) -> Tensor:
    """The predicted class of each image: ``(N, C, H, W)`` in [0, 1] -> ``(N,)`` int64."""
    return _apply(classifier, images).argmax(dim=1)


def accuracy(classifier: nn.Module, images: Tensor, labels: Tensor | int | list[int]) -> float:
    """The fraction of ``images`` ``(N, C, H, W)`` whose predicted class equals ``labels`` ``(N,)``, in [0, 1].

    ``labels`` may be one int (every image has that class) or a list.
    """
    labels = torch.as_tensor(labels).cpu()
    if labels.dim() == 0:
        labels = labels.expand(len(images))
    if labels.shape != (len(images),):
        raise ValueError(
            f"Expected one label per image, shape ({len(images)},); got {tuple(labels.shape)}."
        )
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integers (class indices); got {labels.dtype}.")
    logits = _apply(classifier, images)
    n_classes = logits.shape[1]
    if len(labels) and not (labels.min() >= 0 and labels.max() < n_classes):
        raise ValueError(
            f"labels must be classes of the classifier, 0 to {n_classes - 1}; got "
            f"{labels.min().item()} to {labels.max().item()}. (An off-by-one, 1 to 10?)"
        )
    return (logits.argmax(dim=1) == labels).float().mean().item()


def class_accuracy(
    classifier: nn.Module, images: Tensor, requested_labels: Tensor | int | list[int]
) -> float:
    """For a conditional generator: the share of images assigned to the class they were generated for.

    ``images[i]`` ``(N, C, H, W)`` was generated when asking for class
    ``requested_labels[i]`` ``(N,)`` (or one int for all). Returns a fraction in [0, 1]; 1 / n_classes
    is what a generator that ignores its label scores.
    """
    return accuracy(classifier, images, requested_labels)


def class_coverage(classifier: nn.Module, images: Tensor, n_classes: int = 10) -> dict[str, Any]:
    """How the classifier spreads ``images`` ``(N, C, H, W)`` over the classes.

    Returns a dict:

    - ``"histogram"``: the fraction of images predicted as each class, a list of ``n_classes`` floats;
    - ``"classes_covered"``: how many classes get at least ``COVERED_SHARE`` (10%) of
      their uniform share, that is at least 1% of the images for 10 classes;
    - ``"evenness"``: the entropy of the histogram divided by its maximum,
      ``log(n_classes)``: 1 for a uniform spread, 0 when every image is one class.
    """
    logits = _apply(classifier, images)
    if logits.shape[1] != n_classes:
        raise ValueError(
            f"The classifier has {logits.shape[1]} outputs, but n_classes={n_classes}."
        )
    counts = torch.bincount(logits.argmax(dim=1), minlength=n_classes)
    n = len(images)
    # In integers, so the boundary is exact: count / n >= COVERED_SHARE / n_classes
    covered = int((counts * n_classes * round(1 / COVERED_SHARE) >= n).sum())
    shares = counts.double() / n
    nonzero = shares[shares > 0]
    entropy = (nonzero * (1 / nonzero).log()).sum().item()  # nats; 0 log 0 = 0
    return {
        "classes_covered": covered,
        "evenness": entropy / math.log(n_classes),
        "histogram": shares.tolist(),
    }


# ---------------------------------------------------------------- Fréchet distance


def _as_features(feats: Tensor, name: str) -> Tensor:
    feats = torch.as_tensor(feats)
    if feats.dim() != 2:
        raise ValueError(
            f"{name} must be a matrix of features (N, F); got shape {tuple(feats.shape)}."
        )
    if len(feats) < 2:
        raise ValueError(f"{name} has {len(feats)} sample(s); a covariance needs at least 2.")
    if not torch.isfinite(feats).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return feats.detach().cpu().to(torch.float64)


def _sqrtm_psd(matrix: Tensor) -> Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix ``(F, F)``.

    Through the eigendecomposition M = V diag(l) V^T: sqrt(M) = V diag(sqrt(l)) V^T,
    with the tiny negative eigenvalues that rounding leaves clamped to 0.
    """
    eigvals, eigvecs = torch.linalg.eigh(matrix)
    return (eigvecs * eigvals.clamp(min=0).sqrt()) @ eigvecs.T


def frechet_distance(feats_a: Tensor, feats_b: Tensor) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of features ``(N_a, F)`` and ``(N_b, F)``.

        FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})

    with the sample means and the unbiased sample covariances (divided by N - 1).
    In the units of the features, squared. Computed in float64. The trace of
    the matrix square root is taken as the sum of the square roots of the
    eigenvalues of ``sqrt(S_a) S_b sqrt(S_a)``: it has the same eigenvalues
    as ``S_a S_b`` but is symmetric, so its eigenvalues are real and
    non-negative up to rounding (clamped at 0). This stays stable when the
    covariances are singular (fewer samples than features). Rounding can leave
    ``-1e-12`` for identical sets; the result is clamped at 0.
    """
    a, b = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"The feature sizes differ: feats_a has {a.shape[1]} features, feats_b {b.shape[1]}."
        )
    mu_a, mu_b = a.mean(dim=0), b.mean(dim=0)
    n_feat = a.shape[1]
    cov_a = torch.cov(a.T).reshape(n_feat, n_feat)  # reshape: torch.cov returns a scalar for F = 1
    cov_b = torch.cov(b.T).reshape(n_feat, n_feat)
    root_a = _sqrtm_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    middle = (middle + middle.T) / 2  # symmetric in exact arithmetic; make it so in floating point
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    fd = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt
    return max(fd.item(), 0.0)


def fd_digits(classifier: nn.Module, images_a: Tensor, images_b: Tensor) -> float:
    """FD-digits: :func:`frechet_distance` between two image sets in the classifier's feature space.

    ``images_a`` ``(N_a, C, H, W)`` and ``images_b`` ``(N_b, C, H, W)`` in [0, 1].
    Comparable only with values from the same classifier and the same sample
    sizes; read it against :func:`real_floor`.
    """
    return frechet_distance(
        _apply(classifier, images_a, "features"), _apply(classifier, images_b, "features")
    )


def held_out_sample(data: ImageData, n: int, seed: int = 0) -> Tensor:
    """``n`` held-out (validation) images of ``data``, chosen at random with ``seed``: ``(n, C, H, W)``.

    The reference set of :func:`real_floor`: compare a generator's ``n`` samples
    with these same images.
    """
    if not 2 <= n <= len(data.val_images):
        raise ValueError(
            f"n must be between 2 and the {len(data.val_images)} held-out images of {data.name}; got {n}."
        )
    g = torch.Generator().manual_seed(seed)
    return data.val_images[torch.randperm(len(data.val_images), generator=g)[:n]]


def real_floor(classifier: nn.Module, data: ImageData, n: int, seed: int = 0) -> float:
    """The FD-digits of real images against real images: what a perfect generator would score.

    Compares ``n`` training images (chosen at random with ``seed + 1``) with
    the ``n`` held-out images of ``held_out_sample(data, n, seed)``. Both sets
    are real digits, so the value is the noise of estimating FD from ``n``
    samples, plus the small difference the classifier sees between images it
    was trained on and images it was not. Score a generator the same way::

        fd_digits(classifier, generator_samples[:n], held_out_sample(data, n, seed))

    Same reference images, same ``n``: the two numbers differ only in whether
    the other ``n`` images are real or generated.
    """
    reference = held_out_sample(data, n, seed)
    if n > len(data.train_images):
        raise ValueError(
            f"n={n} is more than the {len(data.train_images)} training images of {data.name}."
        )
    g = torch.Generator().manual_seed(seed + 1)
    real = data.train_images[torch.randperm(len(data.train_images), generator=g)[:n]]
    return fd_digits(classifier, real, reference)
