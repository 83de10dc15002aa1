"""Captions for digit images, measured from the pixels, so they are true and need no download.

A caption names the digit and up to two attributes, each measured from the
image and judged against other images *of the same digit* (an 8 has more ink
than a 1, a 7 leans further right than a 6; "thick" means thick for an 8):

- **thickness**, from the ink: ``ink_fraction = mean / max`` of the pixels,
  the share of the box the strokes cover. Thin or thick.
- **slant**, from the second moments of the ink: the shear ``mu11 / mu02``,
  how far the ink's x moves per unit of height, in image widths per image
  height (positive: the top leans right). Leaning left or leaning right.

Both measures are dimensionless: the same for a digit stored in [0, 1] or
[0, 16], and (to within the pixel grid) for an 8x8 image and its 32x32
enlargement.

:class:`DigitAttributes` learns, per digit, the thirds of each measure on
training images. A caption states an attribute only when the image is in the
bottom or top third (so "thin" is never said of a middling stroke); a
generated image *honours* an attribute when its measure lies on the right side of
the digit's median (:meth:`DigitAttributes.honoured`).

:class:`Description` is what a caption means (digit, thickness, slant);
:func:`phrase` writes it in one of :data:`TEMPLATES`; :class:`CaptionTokenizer`
turns captions into token ids for a text encoder.

    attributes = DigitAttributes.fit(data.train_images, data.train_labels)
    described = attributes.describe(data.train_images, data.train_labels)
    phrase(described[0], template=0)   # 'a thick seven leaning right'
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
THICKNESS = ("thin", "thick")  # below / above the digit's median ink fraction
SLANT = ("leaning left", "leaning right")  # below / above the digit's median shear
TEMPLATES = (
    "a {thickness} {word} {slant}",  # a thin seven leaning left
    "{numeral}, {thickness}, {slant}",  # 7, thin, leaning left
    "the digit {word}, {thickness} and {slant}",  # the digit seven, thin and leaning left
    "a {thickness} {numeral} {slant}",  # a thin 7 leaning left
)


def _as_images(images: Tensor, name: str) -> Tensor:
    """``(N, 1, H, W)`` or ``(N, H, W)`` non-negative images -> ``(N, H, W)`` float."""
    if not isinstance(images, Tensor):
        images = torch.as_tensor(images)
    if images.dim() == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.dim() != 3 or images.shape[0] == 0:
        raise ValueError(
            f"{name} expects grey images (N, 1, H, W) or (N, H, W) with N >= 1; got shape {tuple(images.shape)}."
        )
    images = images.float()
    if images.min() < 0:
        raise ValueError(
            f"{name} measures ink, which cannot be negative; got values down to {images.min().item():.3g}. "
            f"Diffusion samples in [-1, 1] need (x + 1) / 2 first."
        )
    if (images.flatten(1).amax(1) == 0).any():
        raise ValueError(f"{name} needs some ink in every image; at least one image is blank.")
    return images


def ink_fraction(images: Tensor) -> Tensor:
    """The share of the box the strokes cover: ``mean / max`` per image, in (0, 1]. ``(N, 1, H, W)`` -> ``(N,)``."""
    x = _as_images(images, "ink_fraction")
    return x.mean((1, 2)) / x.amax((1, 2))


def slant(images: Tensor) -> Tensor:
    """The ink's shear ``mu11 / mu02``: image widths of rightward lean per image height. ``(N, 1, H, W)`` -> ``(N,)``.

    Coordinates are pixel centres in units of the image size, with y pointing
    *up*, so a positive slant means the top of the digit leans right.
    """
    x = _as_images(images, "slant")
    _, H, W = x.shape
    y_up = -(torch.arange(H, dtype=x.dtype) + 0.5)[:, None] / H  # (H, 1); row 0 is the top
    x_right = (torch.arange(W, dtype=x.dtype) + 0.5)[None, :] / W  # (1, W)
    mass = x.sum((1, 2))
    cx = (x * x_right).sum((1, 2)) / mass  # (N,) the centre of the ink
    cy = (x * y_up).sum((1, 2)) / mass
    dx = x_right - cx[:, None, None]  # (N, 1, W)
    dy = y_up - cy[:, None, None]  # (N, H, 1)
    mu11 = (x * dx * dy).sum((1, 2)) / mass
    mu02 = (x * dy**2).sum((1, 2)) / mass
    return mu11 / mu02


@dataclass(frozen=True)
class Description:
    """What a caption says: a digit and, optionally, its thickness and slant (words from THICKNESS and SLANT)."""

    digit: int
    thickness: str | None = None
    slant: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.digit <= 9:
            raise ValueError(f"A digit is 0..9; got {self.digit}.")
        if self.thickness not in (None, *THICKNESS) or self.slant not in (None, *SLANT):
            raise ValueError(
                f"thickness must be one of {THICKNESS} or None and slant one of {SLANT} or None; "
                f"got {self.thickness!r} and {self.slant!r}."
            )

    @property
    def attributes(self) -> dict[str, str]:
        """The attributes stated: ``{"thickness": "thin"}`` and so on."""
        found = {"thickness": self.thickness, "slant": self.slant}
        return {k: v for k, v in found.items() if v is not None}

    @property
    def codes(self) -> tuple[int, int, int]:
        """``(digit, thickness, slant)`` as integers: 0 where no attribute is stated, else 1 + its index.

        The index is into THICKNESS or SLANT.
        As an image's codes, 0 means middling (no word describes it).
        """
        th = 0 if self.thickness is None else 1 + THICKNESS.index(self.thickness)
        sl = 0 if self.slant is None else 1 + SLANT.index(self.slant)
        return self.digit, th, sl

    def shortened(self) -> list[Description]:
        """This description with every subset of its attributes left out, itself first: all true of the same image."""
        options = [
            (self.thickness, None) if self.thickness else (None,),
            (self.slant, None) if self.slant else (None,),
        ]
        return [Description(self.digit, th, sl) for th in options[0] for sl in options[1]]

    def has(self, digit: int, word: str) -> bool:
        """Whether this describes ``digit`` with the attribute value ``word`` (e.g. 4, "thin")."""
        return self.digit == digit and word in self.attributes.values()


def true_of(captions: Tensor, images: Tensor) -> Tensor:
    """Which captions are true of which images: ``(N, M)`` bool from codes ``captions (M, 3)`` and ``images (N, 3)``.

    Codes are :attr:`Description.codes`. Caption ``j`` is true of image ``i``
    when the digits agree and every attribute the caption states (code > 0)
    is the image's own. An image's code 0 means "middling", which no
    attribute word describes; a caption's code 0 means "not stated". So "a 7"
    is true of every seven, and "a thin 7" of no middling one.
    """
    if captions.dim() != 2 or captions.shape[1] != 3 or images.dim() != 2 or images.shape[1] != 3:
        raise ValueError(
            f"true_of takes codes (M, 3) and (N, 3) (digit, thickness, slant); "
            f"got {tuple(captions.shape)} and {tuple(images.shape)}."
        )
    cap, img = captions[None, :, :], images[:, None, :]  # (1, M, 3), (N, 1, 3)
    digit = cap[..., 0] == img[..., 0]
    attrs = ((cap[..., 1:] == 0) | (cap[..., 1:] == img[..., 1:])).all(-1)
    return digit & attrs


def phrase(description: Description, template: int = 0) -> str:
    """The caption of ``description`` in ``TEMPLATES[template]``; attributes not stated are left out cleanly.

    >>> phrase(Description(7, "thin", "leaning left"), 1)
    '7, thin, leaning left'
    >>> phrase(Description(3), 0)
    'a three'
    """
    if not 0 <= template < len(TEMPLATES):
        raise ValueError(f"template must be 0..{len(TEMPLATES) - 1}; got {template}.")
    d = description
    word, numeral = DIGIT_WORDS[d.digit], str(d.digit)
    attrs = list(d.attributes.values())
    if template == 0 or template == 3:
        name = word if template == 0 else numeral
        return " ".join(w for w in ("a", d.thickness, name, d.slant) if w)
    if template == 1:
        return ", ".join([numeral, *attrs])
    return f"the digit {word}" + (", " + " and ".join(attrs) if attrs else "")


@dataclass
class DigitAttributes:
    """Per digit, the thirds and the median of ink fraction and slant, measured on training images.

    ``thirds[m]`` is ``(10, 3)``: for measure ``m`` ("thickness" or "slant")
    and each digit, the 1/3 quantile, the median and the 2/3 quantile.
    """

    thirds: dict[str, Tensor]

    MEASURES = {"thickness": (ink_fraction, THICKNESS), "slant": (slant, SLANT)}

    @classmethod
    def fit(cls, images: Tensor, labels: Tensor) -> DigitAttributes:
        """Measure ``images (N, 1, H, W)`` with their digit ``labels (N,)``; every digit 0..9 must appear."""
        labels = torch.as_tensor(labels)
        if labels.shape != (len(images),):
            raise ValueError(
                f"One label per image: {len(images)} images, labels of shape {tuple(labels.shape)}."
            )
        missing = sorted(set(range(10)) - set(labels.tolist()))
        if missing:
            raise ValueError(f"DigitAttributes.fit needs images of every digit; none of {missing}.")
        q = torch.tensor([1 / 3, 1 / 2, 2 / 3])
        thirds = {}
        for name, (measure, _) in cls.MEASURES.items():
            values = measure(images)
            thirds[name] = torch.stack([values[labels == k].quantile(q) for k in range(10)])
        return cls(thirds)

    def _measure(
        self, images: Tensor, labels: Tensor | Sequence[int]
    ) -> dict[str, tuple[Tensor, Tensor]]:
        labels = torch.as_tensor(labels).long()
        if labels.shape != (len(images),) or labels.min() < 0 or labels.max() > 9:
            raise ValueError(
                f"One digit 0..9 per image: {len(images)} images, labels {tuple(labels.shape)} "
                f"from {labels.min().item()} to {labels.max().item()}."
            )
        return {
            name: (measure(images), self.thirds[name][labels])  # (N,), (N, 3)
            for name, (measure, _) in self.MEASURES.items()
        }

    def describe(self, images: Tensor, labels: Tensor | Sequence[int]) -> list[Description]:
        """What a caption may truly say of each image: an attribute only in the digit's bottom or top third."""
        measured = self._measure(images, labels)
        words: dict[str, list[str | None]] = {}
        for name, (values, thirds) in measured.items():
            low, high = self.MEASURES[name][1]
            words[name] = [
                low if v < t[0] else high if v > t[2] else None
                for v, t in zip(values.tolist(), thirds.tolist())
            ]
        return [
            Description(int(d), th, sl)
            for d, th, sl in zip(
                torch.as_tensor(labels).tolist(), words["thickness"], words["slant"]
            )
        ]

    def honoured(self, images: Tensor, asked: Sequence[Description]) -> Tensor:
        """For each image and each attribute its description asks for: is the image on that side of the median?

        Returns a bool tensor with one entry per stated attribute, image by image
        (an image asked for two attributes contributes two). Its mean is the
        attribute accuracy; the digit itself is judged by a classifier, not here.
        """
        if len(asked) != len(images):
            raise ValueError(
                f"One description per image: {len(images)} images, {len(asked)} descriptions."
            )
        measured = self._measure(images, [d.digit for d in asked])
        verdicts = []
        for i, d in enumerate(asked):
            for name, word in d.attributes.items():
                values, thirds = measured[name]
                above = bool(values[i] > thirds[i, 1])
                verdicts.append(above == (word == self.MEASURES[name][1][1]))
        return torch.tensor(verdicts, dtype=torch.bool)


# ---------------------------------------------------------------- the tokenizer


class UnknownWordError(ValueError):
    """A prompt holds a word the caption tokenizer has never seen."""

    def __init__(self, message: str, word: str) -> None:
        super().__init__(message)
        self.word = word


def split_words(text: str) -> list[str]:
    """Lower-case words, with each comma a word of its own: ``"7, thin"`` -> ``["7", ",", "thin"]``."""
    return text.lower().replace(",", " , ").split()


class CaptionTokenizer:
    """Word-level ids for captions: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, then the caption words.

    ``encode`` wraps a caption as ``<bos> words <eos>`` and pads it to
    ``context`` ids; the empty caption ``""`` is ``<bos> <eos>``, the *null*
    condition classifier-free guidance uses. :meth:`prompt` is the checked
    entry for text a person typed: it refuses an empty prompt, a word outside
    the vocabulary (suggesting the nearest ones) and a prompt longer than the context.
    """

    PAD, BOS, EOS = 0, 1, 2

    def __init__(self, words: Iterable[str] | None = None, context: int = 12):
        if words is None:
            words = self.caption_words()
        self.words = ["<pad>", "<bos>", "<eos>", *sorted(set(words))]
        self.context = context
        self._id = {w: i for i, w in enumerate(self.words)}

    @staticmethod
    def caption_words() -> set[str]:
        """Every word :func:`phrase` can write."""
        words = set(DIGIT_WORDS) | {str(k) for k in range(10)} | {","}
        for t in TEMPLATES:
            words |= {w for w in split_words(t) if not w.startswith("{")}
        for value in (*THICKNESS, *SLANT):
            words |= set(split_words(value))
        return words

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        """``<bos>``, the words' ids, ``<eos>``, then ``<pad>`` up to ``context`` ids."""
        words = split_words(text)
        if len(words) + 2 > self.context:
            raise ValueError(
                f"{text!r} is {len(words)} words; the text encoder reads at most {self.context - 2} "
                f"(its context is {self.context} tokens, two of them the start and end markers)."
            )
        for w in words:
            if w not in self._id:
                near = difflib.get_close_matches(w, self.words[3:], n=3)
                hint = f" Did you mean {' or '.join(map(repr, near))}?" if near else ""
                raise UnknownWordError(
                    f"The word {w!r} in {text!r} is not in the caption vocabulary.{hint} "
                    f"Known words: {' '.join(self.words[3:])}",
                    w,
                )
        ids = [self.BOS, *(self._id[w] for w in words), self.EOS]
        return ids + [self.PAD] * (self.context - len(ids))

    def __call__(self, texts: str | Sequence[str]) -> Tensor:
        """Captions -> ids ``(B, context)`` int64 (one caption -> ``(1, context)``)."""
        if isinstance(texts, str):
            texts = [texts]
        return torch.tensor([self.encode(t) for t in texts], dtype=torch.long)

    def prompt(self, texts: str | Sequence[str]) -> Tensor:
        """Like calling the tokenizer, but an empty prompt is an error rather than the null condition."""
        for t in [texts] if isinstance(texts, str) else texts:
            if not split_words(t):
                raise ValueError(
                    "The prompt is empty. Name a digit, for example 'a 3' or 'a thick seven leaning right'."
                )
        return self(texts)

    def decode(self, ids: Sequence[int] | Tensor) -> str:
        """Ids -> the caption, markers and padding dropped."""
        ids = torch.as_tensor(ids).tolist()
        words = [self.words[i] for i in ids if i > self.EOS]
        return " ".join(words).replace(" ,", ",")

    def null(self, n: int) -> Tensor:
        """``n`` empty captions, ``(n, context)``: the unconditional input."""
        return self([""] * n)
