"""The captioner: measures that agree with the eye and survive rescaling, phrasings, the tokenizer's errors."""

import pytest
import torch
from torch.nn import functional as F

from genai_lib.data import load_digits
from genai_lib.data.captions import (
    TEMPLATES,
    CaptionTokenizer,
    Description,
    DigitAttributes,
    UnknownWordError,
    ink_fraction,
    phrase,
    slant,
    split_words,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def attributes(digits):
    return DigitAttributes.fit(digits.train_images, digits.train_labels)


def bar(width: int, shear: float = 0.0, size: int = 16) -> torch.Tensor:
    """A vertical bar of ``width`` pixels through the middle, its x shifted by ``shear`` pixels per row upwards."""
    img = torch.zeros(1, 1, size, size)
    for row in range(2, size - 2):
        centre = size / 2 + shear * (
            size / 2 - row
        )  # rows above the middle move right when shear > 0
        left = round(centre - width / 2)
        img[0, 0, row, max(left, 0) : min(left + width, size)] = 1.0
    return img


def test_a_thicker_bar_has_more_ink_and_a_sheared_bar_leans_the_way_it_is_sheared():
    thin, thick = bar(1), bar(4)
    assert ink_fraction(thick) > 3 * ink_fraction(thin)
    assert slant(bar(2)).abs() < 1e-6  # upright
    right, left = slant(bar(2, 0.4)), slant(bar(2, -0.4))
    # the measure is the shear itself: 0.4 pixels right per pixel up (to within the rounding to pixels)
    assert right == pytest.approx(0.4, abs=0.05) and left == pytest.approx(-0.4, abs=0.05)


# Training digits that a person reads at a glance (the extremes of each measure for their digit,
# looked at in a figure): 1301 is a one of a single thin stroke, 655 a one of a fat block;
# 447 a one whose top leans left, 596 a one leaning right; 6 a seven leaning right.
EXTREMES = {
    1301: ("thin", None),
    655: ("thick", None),
    447: (None, "leaning left"),
    596: (None, "leaning right"),
}


def test_the_captions_of_extreme_digits_say_what_a_person_sees(digits, attributes):
    for index, (thickness, lean) in EXTREMES.items():
        (d,) = attributes.describe(digits.train_images[[index]], digits.train_labels[[index]])
        assert d.digit == 1
        if thickness:
            assert d.thickness == thickness, index
        if lean:
            assert d.slant == lean, index
    assert attributes.describe(digits.train_images[[6]], [7])[0].slant == "leaning right"


def test_the_measures_do_not_change_with_the_pixel_scale_or_the_resolution(digits):
    x = digits.train_images[:200]
    # the raw UCI digits are 0..16: the same images, other units
    torch.testing.assert_close(ink_fraction(16 * x), ink_fraction(x))
    torch.testing.assert_close(slant(16 * x), slant(x))
    # each pixel as a 4x4 block (an 8x8 digit drawn at 32x32): ink is identical; the slant moves
    # only by the spread of ink inside a pixel, which the 8x8 grid cannot see (under 0.01 here)
    big = F.interpolate(x, scale_factor=4, mode="nearest")
    torch.testing.assert_close(ink_fraction(big), ink_fraction(x))
    assert (slant(big) - slant(x)).abs().max() < 0.01
    # and the captions, which compare within a digit, are the same at either size
    small_attrs = DigitAttributes.fit(x, digits.train_labels[:200])
    big_attrs = DigitAttributes.fit(big, digits.train_labels[:200])
    assert small_attrs.describe(x, digits.train_labels[:200]) == big_attrs.describe(
        big, digits.train_labels[:200]
    )


def test_captions_state_an_attribute_only_for_the_outer_thirds(digits, attributes):
    described = attributes.describe(digits.train_images, digits.train_labels)
    stated = sum(d.thickness is not None for d in described) / len(described)
    assert 0.6 < stated < 0.72  # two thirds, up to ties
    # every stated attribute is honoured: the outer thirds lie on their side of the median
    assert attributes.honoured(digits.train_images, described).all()


def test_honoured_judges_each_attribute_against_the_median_of_its_digit(digits, attributes):
    ones = digits.train_images[[1301, 655]]
    asked = [Description(1, "thick"), Description(1, "thin")]  # each the opposite of what it shows
    assert not attributes.honoured(ones, asked).any()
    asked = [Description(1, "thin", "leaning left"), Description(1, "thick")]
    # a middling stroke, no caption would call it thick, still counts as thick when just above the median
    ink, ones_thirds = ink_fraction(digits.train_images), attributes.thirds["thickness"][1]
    middling = (
        (digits.train_labels == 1) & (ink > ones_thirds[1]) & (ink < ones_thirds[2])
    ).nonzero()[0]
    assert attributes.describe(digits.train_images[middling], [1])[0].thickness is None
    assert attributes.honoured(digits.train_images[middling], [Description(1, "thick")]).item()
    verdicts = attributes.honoured(
        ones, asked
    )  # one per attribute asked: thin, leaning left; thick
    assert len(verdicts) == 3 and verdicts[0] and verdicts[2]


def test_phrasings_of_every_description_say_the_digit_and_each_attribute():
    for desc in (
        Description(4, "thin", "leaning right"),
        Description(0),
        Description(9, None, "leaning left"),
    ):
        for t in range(len(TEMPLATES)):
            text = phrase(desc, t)
            assert "  " not in text and not text.endswith(",") and "{" not in text
            assert ("four" in text or "4" in text) if desc.digit == 4 else True
            for word in desc.attributes.values():
                assert word in text
    assert (
        phrase(Description(7, "thin", "leaning left"), 2)
        == "the digit seven, thin and leaning left"
    )


def test_descriptions_and_thresholds_refuse_what_cannot_be(digits, attributes):
    with pytest.raises(ValueError, match="0..9"):
        Description(10)
    with pytest.raises(ValueError, match="thickness must be"):
        Description(3, "bold")
    with pytest.raises(ValueError, match="every digit"):
        DigitAttributes.fit(
            digits.train_images[:50][digits.train_labels[:50] < 5],
            digits.train_labels[:50][digits.train_labels[:50] < 5],
        )
    with pytest.raises(ValueError, match="cannot be negative"):
        ink_fraction(digits.train_images[:4] * 2 - 1)
    with pytest.raises(ValueError, match="blank"):
        slant(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="grey images"):
        ink_fraction(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="One description per image"):
        attributes.honoured(digits.train_images[:3], [Description(1)])


# ---------------------------------------------------------------- the tokenizer


def test_every_phrasing_round_trips_through_the_tokenizer(digits, attributes):
    tok = CaptionTokenizer()
    for d in attributes.describe(digits.train_images[:300], digits.train_labels[:300]):
        for t in range(len(TEMPLATES)):
            ids = tok.encode(phrase(d, t))
            assert len(ids) == tok.context and ids[0] == tok.BOS and tok.EOS in ids
            assert tok.decode(ids) == phrase(d, t)


def test_the_empty_caption_is_the_null_condition_but_an_empty_prompt_is_an_error():
    tok = CaptionTokenizer()
    assert tok.null(2).tolist() == [[1, 2] + [0] * (tok.context - 2)] * 2
    with pytest.raises(ValueError, match="prompt is empty"):
        tok.prompt("   ")
    with pytest.raises(ValueError, match="prompt is empty"):
        tok.prompt(["a 3", ""])


def test_an_unknown_word_is_named_with_the_nearest_known_ones():
    tok = CaptionTokenizer()
    with pytest.raises(UnknownWordError, match="'thik'.*Did you mean 'thick'") as err:
        tok.prompt("a thik seven")
    assert err.value.word == "thik" and "leaning" in str(err.value)  # the vocabulary is listed
    with pytest.raises(UnknownWordError, match="'purple'"):
        tok("a purple 3")


def test_a_caption_longer_than_the_context_is_refused_not_cut():
    tok = CaptionTokenizer(context=6)
    tok.encode("a thin 7 leaning")  # 4 words + 2 markers fit
    with pytest.raises(ValueError, match="at most 4"):
        tok.encode("a thin 7 leaning left")


def test_words_are_split_at_spaces_and_commas_in_any_case():
    assert split_words("7,Thin,  leaning LEFT") == ["7", ",", "thin", ",", "leaning", "left"]


def test_a_caption_is_true_of_every_image_it_describes_and_no_other():
    from genai_lib.data.captions import true_of

    images = [Description(7, "thin", "leaning left"), Description(7), Description(1, "thin")]
    captions = [
        Description(7),
        Description(7, "thin"),
        Description(7, None, "leaning right"),
        Description(1),
    ]
    table = true_of(
        torch.tensor([c.codes for c in captions]), torch.tensor([d.codes for d in images])
    ).tolist()
    assert table == [
        [True, True, False, False],  # a thin seven leaning left: "a 7", "a thin 7"
        [True, False, False, False],  # a middling seven: only "a 7" ("thin" is not said of it)
        [False, False, False, True],  # a thin one: "a 1"
    ]


def test_shortened_descriptions_are_all_the_true_ones():
    full = Description(4, "thick", "leaning right")
    assert full.shortened() == [
        full,
        Description(4, "thick"),
        Description(4, None, "leaning right"),
        Description(4),
    ]
    assert Description(4).shortened() == [Description(4)]
    assert Description(4, "thin").codes == (4, 1, 0)
