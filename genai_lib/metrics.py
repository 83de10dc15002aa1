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

The classifier of the bundled 8x8 digits ships with the course, pinned in
``data/classifiers/`` with its SHA-256 (:func:`pin_classifier` made it), so
every FD-digits figure on every machine uses the same features. For other
datasets (MNIST, Fashion-MNIST) it is trained once per machine and cached
(:func:`load_or_train_classifier`). Images are always ``(N, C, H, W)`` with
pixel values in [0, 1], like :class:`~genai_lib.data.ImageData`.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genai_lib import checkpoint as ckpt
from genai_lib import config
from genai_lib.data.images import ImageData
from genai_lib.models.classifier import DigitClassifier
from genai_lib.shipped import ShippedWeightsError, load_weights, save_weights
from genai_lib.train import fit

CACHE_FORMAT = "genai_lib.classifier/1"
PINNED_DIR = config.REPO_DATA_DIR / "classifiers"  # the classifiers that ship with the course
PIN_COMMAND = "python -m genai_lib pretrain --classifier"
COVERED_SHARE = 0.1  # a class is covered if it gets at least 10% of its uniform share, 1 / n_classes


# ---------------------------------------------------------------- training the classifier


def random_shift(images: Tensor, max_shift: int = 1) -> Tensor:
    """Shift each image by its own random offset of up to ``max_shift`` pixels in x and y.

    Pixels shifted in from outside are 0 (background). ``(N, C, H, W) -> (N, C, H, W)``.
    Draws from the global torch random generator, on the images' device.
    """
    n, c, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)                      # (N, C, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n, 1), device=images.device)
    rows = (dy + torch.arange(h, device=images.device))[:, None, :, None]   # (N, 1, H, 1)
    cols = (dx + torch.arange(w, device=images.device))[:, None, None, :]   # (N, 1, 1, W)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def train_classifier(data: ImageData, steps: int | None = None, seed: int = 0,
                     device: str | torch.device | None = None, progress: bool | str = True,
                     batch_size: int = 64, lr: float = 2e-3) -> DigitClassifier:
    """Train a :class:`DigitClassifier` on ``data``'s training images, with :func:`genai_lib.train.fit`.

    The loss is the cross-entropy (nats per image) on images shifted at random
    by up to 1 pixel (8x8) or 2 pixels (28x28), a light augmentation that
    helps on the 1,438 training digits. ``steps=None`` picks 1,000 steps for
    images of 16x16 or less and 2,000 otherwise (batches of 64: about 45
    epochs of the digits, 2 of MNIST). On the digits that gives 98-99%
    held-out accuracy in about 10 s on one CPU core. Returns the model in eval mode.
    """
    c, h, w = data.shape
    if steps is None:
        steps = 1000 if h * w <= 16 * 16 else 2000
    config.seed_everything(seed)  # the initial weights and the shifts
    model = DigitClassifier(data.shape, n_classes=len(data.classes))
    max_shift = max(1, round(h / 14))  # 1 pixel for 8x8, 2 for 28x28

    def loss_fn(batch: tuple[Tensor, Tensor]) -> Tensor:
        images, labels = batch
        return F.cross_entropy(model(random_shift(images, max_shift)), labels)

    fit(model, loss_fn, (data.train_images, data.train_labels), steps=steps, batch_size=batch_size,
        lr=lr, weight_decay=1e-4, warmup_steps=min(100, steps // 10), device=device, seed=seed,
        progress=progress, desc=f"{data.name} classifier")
    return model.eval()


def classifier_cache_path(data: ImageData, cache_dir: str | Path | None = None) -> Path:
    """Where the classifier of ``data`` is cached: ``<cache_dir>/<data.name>.pt``.

    ``cache_dir`` defaults to ``config.download_dir() / "classifiers"``.
    """
    folder = Path(cache_dir) if cache_dir is not None else config.download_dir() / "classifiers"
    return folder / f"{data.name}.pt"


def _load_cached(path: Path, model: DigitClassifier) -> None:
    """Load cached weights into ``model``, or raise :class:`CheckpointError` saying why they don't fit."""
    try:
        state = ckpt.load_file(path, "cached classifier")
    except ckpt.CheckpointError as err:
        reason = "it is damaged" if "damaged" in str(err) else "it cannot be read"
        raise ckpt.CheckpointError(reason) from None
    if not isinstance(state, dict) or state.get("format") != CACHE_FORMAT:
        raise ckpt.CheckpointError(f"it is not a {CACHE_FORMAT} file")
    problems = ckpt.compare_fingerprints("classifier", state["fingerprint"], ckpt.fingerprint(model))
    if problems:
        raise ckpt.CheckpointError(f"it was saved from a different network: {problems[0]}")
    model.load_state_dict(state["model"])


def pin_classifier(data: ImageData, folder: str | Path | None = None, steps: int | None = None, seed: int = 0,
                   progress: bool | str = True, command: str = PIN_COMMAND) -> Path:
    """Train the classifier of ``data`` on the CPU and save it as a shipped model; return its JSON path.

    The files are ``<folder>/<data.name>.safetensors`` and ``.json`` (the
    network's settings, the command, the held-out accuracy, the SHA-256);
    ``folder`` defaults to the repository's ``data/classifiers``. The same
    command on the same machine gives the same file, bit for bit.
    """
    folder = Path(folder) if folder is not None else PINNED_DIR
    start = time.perf_counter()
    model = train_classifier(data, steps=steps, seed=seed, device="cpu", progress=progress)
    seconds = time.perf_counter() - start
    acc = accuracy(model, data.val_images, data.val_labels)
    info = {"data": data.name, "network": {"image_shape": list(model.image_shape), "n_classes": model.n_classes,
                                           "feature_dim": model.feature_dim},
            "seed": seed, "command": command, "train_seconds": round(seconds, 1), "torch": torch.__version__,
            "held_out_accuracy": round(acc, 4), "held_out_images": len(data.val_images)}
    return save_weights(folder, data.name, model.state_dict(), info)


def load_pinned_classifier(data: ImageData, folder: str | Path | None = None,
                           device: str | torch.device | None = None) -> DigitClassifier:
    """The shipped classifier of ``data`` (in eval mode), after checking its SHA-256.

    Raises :class:`~genai_lib.shipped.ShippedWeightsError` if it is missing or
    altered, or was made for images of another shape.
    """
    folder = Path(folder) if folder is not None else PINNED_DIR
    rebuild = f"Rebuild it with:  {PIN_COMMAND}"
    weights, meta = load_weights(folder, data.name, f"pinned {data.name} classifier", rebuild)
    net = meta["network"]
    if tuple(net["image_shape"]) != tuple(data.shape) or net["n_classes"] != len(data.classes):
        raise ShippedWeightsError(f"The pinned classifier {folder / data.name}.safetensors was made for images "
                                  f"{tuple(net['image_shape'])} in {net['n_classes']} classes; {data.name} has "
                                  f"{tuple(data.shape)} in {len(data.classes)}. {rebuild}")
    model = DigitClassifier(tuple(net["image_shape"]), n_classes=net["n_classes"], feature_dim=net["feature_dim"])
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise ShippedWeightsError(f"The pinned classifier's weights do not fit its recorded network ({err}). "
                                  f"{rebuild}") from None
    return model.to(config.get_device(device)).eval()


def load_or_train_classifier(data: ImageData, cache_dir: str | Path | None = None, pinned: bool = True,
                             **kw: Any) -> DigitClassifier:
    """The classifier of ``data``: the pinned one if the course ships one, else cached or trained.

    With ``pinned=True`` (the default) and a shipped classifier for
    ``data.name`` in ``data/classifiers/`` (the 8x8 digits have one), that one
    is loaded and its SHA-256 checked; a damaged file raises
    :class:`~genai_lib.shipped.ShippedWeightsError` rather than being replaced
    quietly, since every FD-digits figure depends on these exact weights.
    Otherwise the per-machine cache :func:`classifier_cache_path`
    (``<download_dir>/classifiers/<data.name>.pt``) is used: written
    atomically and read with ``weights_only=True``; a cache file that is
    corrupt or holds a different network is retrained and overwritten, with a
    printed note. ``kw`` (``steps``, ``seed``, ``device``, ``progress``...)
    go to :func:`train_classifier` when training is needed; ``device`` also
    says where a loaded classifier goes. Prints one line: loaded or trained,
    and the accuracy on ``data``'s held-out images. Returns the model in eval mode.
    """
    if pinned and (PINNED_DIR / f"{data.name}.json").is_file():
        model = load_pinned_classifier(data, device=kw.get("device"))
        acc = accuracy(model, data.val_images, data.val_labels)
        print(f"Loaded the course's pinned {data.name} classifier (data/classifiers/{data.name}.safetensors, "
              f"SHA-256 checked): held-out accuracy {100 * acc:.1f}% ({len(data.val_images)} images).")
        return model
    path = classifier_cache_path(data, cache_dir)
    model = DigitClassifier(data.shape, n_classes=len(data.classes))
    how = None
    if path.exists():
        try:
            _load_cached(path, model)
            model = model.to(config.get_device(kw.get("device"))).eval()
            how = f"Loaded the {data.name} classifier from {path}"
        except ckpt.CheckpointError as err:
            print(f"Note: the cached classifier {path} cannot be used ({err}); training a new one.")
    if how is None:
        start = time.perf_counter()
        model = train_classifier(data, **kw)
        seconds = time.perf_counter() - start
        ckpt.atomic_save({"format": CACHE_FORMAT, "data_name": data.name,
                          "fingerprint": ckpt.fingerprint(model),
                          "model": {k: v.cpu() for k, v in model.state_dict().items()}}, path)
        how = f"Trained a {data.name} classifier in {seconds:.1f} s and saved it to {path}"
    acc = accuracy(model, data.val_images, data.val_labels)
    print(f"{how}: held-out accuracy {100 * acc:.1f}% ({len(data.val_images)} images).")
    return model


# ---------------------------------------------------------------- applying the classifier


@torch.no_grad()
def _apply(classifier: nn.Module, images: Tensor, what: str = "logits", batch_size: int = 1000) -> Tensor:
    """``classifier`` (``what="logits"``) or ``classifier.features`` on ``images``, in eval mode, in batches.

    ``(N, C, H, W)`` in [0, 1] -> ``(N, K)`` on the CPU, float32.
    """
    if not isinstance(images, Tensor) or images.dim() != 4 or len(images) == 0:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"Expected a batch of images (N, C, H, W) with N >= 1; got {shape}.")
    low, high = images.min().item(), images.max().item()
    if not (low >= -1e-4 and high <= 1 + 1e-4):  # also catches NaN
        raise ValueError(f"The classifier expects pixel values in [0, 1]; these range over [{low:.3g}, {high:.3g}]. "
                         f"Logits? Apply torch.sigmoid. Values in [-1, 1]? Use (x + 1) / 2.")
    fn = classifier if what == "logits" else classifier.features
    device, was_training = config.device_of(classifier), classifier.training
    classifier.eval()
    try:
        out = [fn(images[i:i + batch_size].to(device, torch.float32)).float().cpu()
               for i in range(0, len(images), batch_size)]
    finally:
        classifier.train(was_training)
    return torch.cat(out)


def predict(classifier: nn.Module, images: Tensor) -> Tensor:
    """The predicted class of each image: ``(N, C, H, W)`` in [0, 1] -> ``(N,)`` int64."""
    return _apply(classifier, images).argmax(dim=1)


def accuracy(classifier: nn.Module, images: Tensor, labels: Tensor) -> float:
    """The fraction of ``images`` ``(N, C, H, W)`` whose predicted class equals ``labels`` ``(N,)``, in [0, 1]."""
    if labels.shape != (len(images),):
        raise ValueError(f"Expected one label per image, shape ({len(images)},); got {tuple(labels.shape)}.")
    return (predict(classifier, images) == labels.cpu()).float().mean().item()


def class_accuracy(classifier: nn.Module, images: Tensor, requested_labels: Tensor) -> float:
    """For a conditional generator: the share of images assigned to the class they were generated for.

    ``images[i]`` ``(N, C, H, W)`` was generated when asking for class
    ``requested_labels[i]`` ``(N,)``. Returns a fraction in [0, 1]; 1 / n_classes
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
        raise ValueError(f"The classifier has {logits.shape[1]} outputs, but n_classes={n_classes}.")
    counts = torch.bincount(logits.argmax(dim=1), minlength=n_classes)
    n = len(images)
    # In integers, so the boundary is exact: count / n >= COVERED_SHARE / n_classes
    covered = int((counts * n_classes * round(1 / COVERED_SHARE) >= n).sum())
    shares = counts.double() / n
    nonzero = shares[shares > 0]
    entropy = (nonzero * (1 / nonzero).log()).sum().item()  # nats; 0 log 0 = 0
    return {"classes_covered": covered,
            "evenness": entropy / math.log(n_classes),
            "histogram": shares.tolist()}


# ---------------------------------------------------------------- Fréchet distance


def _as_features(feats: Tensor, name: str) -> Tensor:
    feats = torch.as_tensor(feats)
    if feats.dim() != 2:
        raise ValueError(f"{name} must be a matrix of features (N, F); got shape {tuple(feats.shape)}.")
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
        raise ValueError(f"The feature sizes differ: feats_a has {a.shape[1]} features, feats_b {b.shape[1]}.")
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
    return frechet_distance(_apply(classifier, images_a, "features"), _apply(classifier, images_b, "features"))


def held_out_sample(data: ImageData, n: int, seed: int = 0) -> Tensor:
    """``n`` held-out (validation) images of ``data``, chosen at random with ``seed``: ``(n, C, H, W)``.

    The reference set of :func:`real_floor`: compare a generator's ``n`` samples
    with these same images.
    """
    if not 2 <= n <= len(data.val_images):
        raise ValueError(f"n must be between 2 and the {len(data.val_images)} held-out images of {data.name}; got {n}.")
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
        raise ValueError(f"n={n} is more than the {len(data.train_images)} training images of {data.name}.")
    g = torch.Generator().manual_seed(seed + 1)
    real = data.train_images[torch.randperm(len(data.train_images), generator=g)[:n]]
    return fd_digits(classifier, real, reference)
