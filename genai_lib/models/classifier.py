"""A small convolutional digit classifier: the judge that measures generated images.

    forward(x)  -> logits (N, n_classes)     which class is this image?
    features(x) -> (N, feature_dim)          the penultimate activations

The classifier is not a generative model. Chapters train it once (see
:func:`genai_lib.classifiers.load_or_train_classifier`) and use it to score
generators: which classes they draw (coverage), whether a conditional
generator draws the class it was asked for, and how far the generated images
lie from real ones in the space of ``features`` (FD-digits, a small-scale FID).

The network, for an image of H x W pixels (H and W divisible by 4):

    conv 3x3 -> ReLU -> max-pool 2        (32, H/2, W/2)
    conv 3x3 -> ReLU -> max-pool 2        (64, H/4, W/4)
    flatten -> linear -> ReLU             (feature_dim,)  = features(x)
    dropout -> linear                     (n_classes,)    = forward(x)
"""

from __future__ import annotations

from torch import Tensor, nn


class DigitClassifier(nn.Module):
    """A CNN for grey images of shape ``image_shape = (C, H, W)``, pixels in [0, 1].

    Works for the 8x8 digits and 28x28 MNIST; H and W must be divisible by 4
    (two 2x2 poolings). ``feature_dim`` is the size of :meth:`features`.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        n_classes: int = 10,
        feature_dim: int = 64,
        dropout: float = 0.2,
    ):
        super().__init__()
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W); got {image_shape}.")
        c, h, w = image_shape
        if h % 4 or w % 4 or h < 4 or w < 4:
            raise ValueError(
                f"DigitClassifier pools twice by 2, so it needs a height and width divisible "
                f"by 4 (8x8 digits, 28x28 MNIST); got {h}x{w}."
            )
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2; got {n_classes}.")
        self.image_shape, self.n_classes, self.feature_dim = (c, h, w), n_classes, feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (32, H/2, W/2)
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (64, H/4, W/4)
            nn.Flatten(),
            nn.Linear(64 * (h // 4) * (w // 4), feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, n_classes))

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"This classifier was built for images of shape "
                f"(N, {', '.join(map(str, self.image_shape))}); got {tuple(x.shape)}."
            )

    def features(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` in [0, 1] -> the penultimate activations ``(N, feature_dim)``, after the ReLU."""
        self._check(x)
        # Centre the pixels around 0 so the first layer sees inputs in [-1, 1], whatever the dataset
        return self.body(2 * x - 1)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` in [0, 1] -> class logits ``(N, n_classes)``."""
        return self.head(self.features(x))
