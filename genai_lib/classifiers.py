"""The digit classifier that scores generated images: trained, pinned, cached, loaded.

The measurements themselves (FD-digits, coverage, class accuracy) are in
:mod:`genai_lib.metrics`; this module gets them a classifier.

- The classifier of the bundled 8x8 digits ships with the course, pinned in
  ``data/classifiers/`` with its SHA-256 (:func:`pin_classifier` made it), so
  every FD-digits figure on every machine uses the same features.
- For other datasets (MNIST, Fashion-MNIST) it is trained once per machine
  with the course's loop and cached (:func:`load_or_train_classifier`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from genai_lib import checkpoint as ckpt
from genai_lib import config
from genai_lib.data.images import ImageData
from genai_lib.metrics import accuracy
from genai_lib.models.classifier import DigitClassifier
from genai_lib.shipped import ShippedWeightsError, load_weights, save_weights
from genai_lib.train import fit

CACHE_FORMAT = "genai_lib.classifier/1"
PINNED_DIR = config.SHIPPED_DATA_DIR / "classifiers"  # the classifiers that ship with the course
PIN_COMMAND = "python -m genai_lib pretrain --classifier"


def random_shift(images: Tensor, max_shift: int = 1) -> Tensor:
    """Shift each image by its own random offset of up to ``max_shift`` pixels in x and y.

    Pixels shifted in from outside are 0 (background). ``(N, C, H, W) -> (N, C, H, W)``.
    Draws from the global torch random generator, on the images' device.
    """
    n, c, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)  # (N, C, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n, 1), device=images.device)
    rows = (dy + torch.arange(h, device=images.device))[:, None, :, None]  # (N, 1, H, 1)
    cols = (dx + torch.arange(w, device=images.device))[:, None, None, :]  # (N, 1, 1, W)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def train_classifier(
    data: ImageData,
    steps: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool | str = True,
    batch_size: int = 64,
    lr: float = 2e-3,
) -> DigitClassifier:
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

    fit(
        model,
        loss_fn,
        (data.train_images, data.train_labels),
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=1e-4,
        warmup_steps=min(100, steps // 10),
        device=device,
        seed=seed,
        progress=progress,
        desc=f"{data.name} classifier",
    )
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
    problems = ckpt.compare_fingerprints(
        "classifier", state["fingerprint"], ckpt.fingerprint(model)
    )
    if problems:
        raise ckpt.CheckpointError(f"it was saved from a different network: {problems[0]}")
    model.load_state_dict(state["model"])


def pin_classifier(
    data: ImageData,
    folder: str | Path | None = None,
    steps: int | None = None,
    seed: int = 0,
    progress: bool | str = True,
    command: str = PIN_COMMAND,
) -> Path:
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
    info = {
        "data": data.name,
        "network": {
            "image_shape": list(model.image_shape),
            "n_classes": model.n_classes,
            "feature_dim": model.feature_dim,
        },
        "seed": seed,
        "command": command,
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "held_out_accuracy": round(acc, 4),
        "held_out_images": len(data.val_images),
    }
    return save_weights(folder, data.name, model.state_dict(), info)


def load_pinned_classifier(
    data: ImageData, folder: str | Path | None = None, device: str | torch.device | None = None
) -> DigitClassifier:
    """The shipped classifier of ``data`` (in eval mode), after checking its SHA-256.

    Raises :class:`~genai_lib.shipped.ShippedWeightsError` if it is missing or
    altered, or was made for images of another shape.
    """
    folder = Path(folder) if folder is not None else PINNED_DIR
    rebuild = f"Rebuild it with:  {PIN_COMMAND}"
    weights, meta = load_weights(folder, data.name, f"pinned {data.name} classifier", rebuild)
    net = meta["network"]
    if tuple(net["image_shape"]) != tuple(data.shape) or net["n_classes"] != len(data.classes):
        raise ShippedWeightsError(
            f"The pinned classifier {folder / data.name}.safetensors was made for images "
            f"{tuple(net['image_shape'])} in {net['n_classes']} classes; {data.name} has "
            f"{tuple(data.shape)} in {len(data.classes)}. {rebuild}"
        )
    model = DigitClassifier(
        tuple(net["image_shape"]), n_classes=net["n_classes"], feature_dim=net["feature_dim"]
    )
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise ShippedWeightsError(
            f"The pinned classifier's weights do not fit its recorded network ({err}). {rebuild}"
        ) from None
    return model.to(config.get_device(device)).eval()


def load_or_train_classifier(
    data: ImageData, cache_dir: str | Path | None = None, pinned: bool = True, **kw: Any
) -> DigitClassifier:
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
        print(
            f"Loaded the course's pinned {data.name} classifier (data/classifiers/{data.name}.safetensors, "
            f"SHA-256 checked): held-out accuracy {100 * acc:.1f}% ({len(data.val_images)} images)."
        )
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
        ckpt.atomic_save(
            {
                "format": CACHE_FORMAT,
                "data_name": data.name,
                "fingerprint": ckpt.fingerprint(model),
                "model": {k: v.cpu() for k, v in model.state_dict().items()},
            },
            path,
        )
        how = f"Trained a {data.name} classifier in {seconds:.1f} s and saved it to {path}"
    acc = accuracy(model, data.val_images, data.val_labels)
    print(f"{how}: held-out accuracy {100 * acc:.1f}% ({len(data.val_images)} images).")
    return model
