"""Measuring generated images: the Fréchet distance, class coverage, and the digit classifier.

The Fréchet distance is checked against closed forms. To make those checks
exact rather than statistical, most sets are built so that their *sample*
mean and covariance equal the target ones (:func:`exact_gaussian_sample`);
then the only error left is float64 rounding, and the tolerance is 1e-9
relative. One test uses plain random draws, with a tolerance of 5 standard
errors worked out in its docstring.

The classifier is trained once for the module (about 10 s on one CPU core)
in a temporary data folder, and shared by the tests that need a real one.
Coverage and class accuracy use a stub classifier whose predictions we set.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genai_lib import checkpoint as ckpt
from genai_lib import metrics
from genai_lib.classifiers import (
    PINNED_DIR,
    classifier_cache_path,
    load_or_train_classifier,
    load_pinned_classifier,
    pin_classifier,
)
from genai_lib.data import ImageData, load_digits
from genai_lib.metrics import (
    accuracy,
    class_accuracy,
    class_coverage,
    fd_digits,
    frechet_distance,
    held_out_sample,
    real_floor,
)
from genai_lib.models import DigitClassifier
from genai_lib.shipped import ShippedWeightsError

RTOL = 1e-9  # float64 rounding in a few small matrix products and eigendecompositions


# ---------------------------------------------------------------- Fréchet distance


def exact_gaussian_sample(n: int, mean: Tensor, cov: Tensor, seed: int = 0) -> Tensor:
    """``n`` points ``(n, D)`` in float64 whose sample mean is ``mean`` and unbiased sample covariance ``cov``.

    Draw standard normals, centre them, whiten them so that their sample
    covariance is exactly I, then colour them with the Cholesky factor of ``cov``.
    """
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, len(mean), generator=g, dtype=torch.float64)
    z = z - z.mean(dim=0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(z.T))).T  # sample covariance -> I
    return mean + z @ torch.linalg.cholesky(cov).T


def test_the_helper_gives_exact_moments():
    mean, cov = (
        torch.tensor([1.0, -2.0], dtype=torch.float64),
        torch.tensor([[2.0, 0.8], [0.8, 1.0]], dtype=torch.float64),
    )
    x = exact_gaussian_sample(50, mean, cov)
    torch.testing.assert_close(x.mean(dim=0), mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.cov(x.T), cov, rtol=0, atol=1e-12)


def test_fd_of_diagonal_gaussians_has_the_simple_closed_form():
    # Diagonal covariances commute, so FD = ||mu_a - mu_b||^2 + sum_i (sigma_a,i - sigma_b,i)^2.
    f64 = dict(dtype=torch.float64)
    mu_a, mu_b = (
        torch.tensor([0.0, 1.0, -1.0, 2.0], **f64),
        torch.tensor([0.5, 1.0, 1.0, -1.0], **f64),
    )
    sd_a, sd_b = (
        torch.tensor([1.0, 2.0, 0.5, 1.0], **f64),
        torch.tensor([3.0, 1.0, 0.5, 0.1], **f64),
    )
    a = exact_gaussian_sample(40, mu_a, torch.diag(sd_a**2), seed=1)
    b = exact_gaussian_sample(60, mu_b, torch.diag(sd_b**2), seed=2)
    expected = ((mu_a - mu_b) ** 2).sum() + ((sd_a - sd_b) ** 2).sum()  # 13.25 + 5.81 = 19.06
    assert frechet_distance(a, b) == pytest.approx(expected.item(), rel=RTOL)


def test_fd_of_non_commuting_covariances_matches_the_2x2_closed_form():
    # For 2x2 matrices, Tr((S_a S_b)^{1/2}) = sqrt(Tr(S_a S_b) + 2 sqrt(det S_a det S_b)):
    # the eigenvalues l1, l2 of S_a S_b are non-negative, and (sqrt l1 + sqrt l2)^2 = l1 + l2 + 2 sqrt(l1 l2).
    s_a = torch.tensor([[2.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    s_b = torch.tensor([[1.0, -0.5], [-0.5, 3.0]], dtype=torch.float64)
    # sqrt(S_a) sqrt(S_b) would be the wrong answer here
    assert not torch.allclose(s_a @ s_b, s_b @ s_a)
    mu_a, mu_b = (
        torch.tensor([1.0, 0.0], dtype=torch.float64),
        torch.tensor([0.0, 2.0], dtype=torch.float64),
    )
    trace_sqrt = math.sqrt(torch.trace(s_a @ s_b) + 2 * math.sqrt(torch.det(s_a) * torch.det(s_b)))
    expected = (mu_a - mu_b).square().sum().item() + torch.trace(s_a + s_b).item() - 2 * trace_sqrt
    a, b = (
        exact_gaussian_sample(30, mu_a, s_a, seed=3),
        exact_gaussian_sample(45, mu_b, s_b, seed=4),
    )
    assert frechet_distance(a, b) == pytest.approx(expected, rel=RTOL)


def test_fd_from_plain_random_draws_is_close_to_the_closed_form():
    """n = 50,000 draws per set from N(0, diag(1, 1, 1)) and N((1, 0, 0), diag(4, 1, 0.25)).

    True FD = 1 + (1 - 2)^2 + 0 + (1 - 0.5)^2 = 2.25. The estimate's standard error,
    to first order: the mean term 2 * sqrt(d^T (S_a + S_b) d / n) = 2 * sqrt(5 / n) = 0.020;
    the covariance terms 2 |s_a - s_b| * sqrt((s_a^2 + s_b^2) / 2n) = 0.014 and 0.004 (the
    middle one is second order). Together 0.025; its bias, about Tr(S_a + S_b) / n = 2e-4, is
    negligible. Tolerance: 5 standard errors, 0.125.
    """
    n, g = 50_000, torch.Generator().manual_seed(0)
    a = torch.randn(n, 3, generator=g, dtype=torch.float64)
    b = torch.tensor([1.0, 0.0, 0.0]) + torch.randn(
        n, 3, generator=g, dtype=torch.float64
    ) * torch.tensor([2.0, 1.0, 0.5])
    assert frechet_distance(a, b) == pytest.approx(2.25, abs=0.125)


def test_fd_is_zero_for_identical_sets_even_with_singular_covariances():
    g = torch.Generator().manual_seed(0)
    full_rank = torch.randn(200, 8, generator=g) ** 2  # not Gaussian: FD only uses the moments
    singular = torch.randn(10, 64, generator=g)  # 10 points in 64 dimensions: rank 9
    for x in (full_rank, singular):
        scale = torch.cov(x.T.double()).trace().item()
        assert frechet_distance(x, x.clone()) <= 1e-9 * scale
    other = torch.randn(10, 64, generator=g)
    fd = frechet_distance(singular, other)
    assert math.isfinite(fd) and fd > 0


def test_fd_is_symmetric():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(300, 5, generator=g) @ torch.randn(5, 5, generator=g)
    b = torch.rand(200, 5, generator=g) * 3 + 1  # different sizes and shapes of distribution
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=RTOL)


def test_a_mean_shift_adds_its_squared_length():
    # Same covariance on both sides: the trace term is 0 and FD = ||shift||^2 exactly.
    g = torch.Generator().manual_seed(2)
    x = torch.randn(100, 6, generator=g, dtype=torch.float64) @ torch.randn(
        6, 6, generator=g, dtype=torch.float64
    )
    direction = torch.randn(6, generator=g, dtype=torch.float64)
    fds = [frechet_distance(x, x + t * direction) for t in (0.5, 1.0, 2.0)]
    for t, fd in zip((0.5, 1.0, 2.0), fds):
        # rounding of a larger trace
        assert fd == pytest.approx(t**2 * direction.square().sum().item(), rel=1e-8)
    assert fds[0] < fds[1] < fds[2]


def test_fd_refuses_bad_inputs():
    x = torch.randn(10, 4)
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(x, torch.randn(10, 5))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(x, torch.randn(1, 4))
    with pytest.raises(ValueError, match=r"\(N, F\)"):
        frechet_distance(torch.randn(10), torch.randn(10))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(x, torch.full((10, 4), float("nan")))


# ---------------------------------------------------------------- coverage and class accuracy


class ReadsTheClassFromAPixel(nn.Module):
    """A stub classifier: the top-left pixel of an image holds its class, k / 10."""

    def forward(self, x: Tensor) -> Tensor:
        k = (x[:, 0, 0, 0] * 10).round().long()
        return 5.0 * F.one_hot(k, 10).float()  # logits (N, 10)


def images_of(classes: list[int]) -> Tensor:
    """Blank 8x8 images that the stub classifies as ``classes``: ``(len(classes), 1, 8, 8)``."""
    images = torch.zeros(len(classes), 1, 8, 8)
    images[:, 0, 0, 0] = torch.tensor(classes, dtype=torch.float32) / 10
    return images


def test_coverage_of_all_classes_and_of_a_collapsed_generator():
    stub = ReadsTheClassFromAPixel()
    even = class_coverage(stub, images_of(list(range(10)) * 30))
    assert even["classes_covered"] == 10
    assert even["evenness"] == pytest.approx(1.0, abs=1e-12)
    assert even["histogram"] == pytest.approx([0.1] * 10, abs=1e-12)

    collapsed = class_coverage(stub, images_of([7] * 300))
    assert collapsed["classes_covered"] == 1
    assert collapsed["evenness"] == 0.0
    assert collapsed["histogram"] == [0.0] * 7 + [1.0] + [0.0] * 2


def test_evenness_is_the_normalised_entropy():
    half_and_half = class_coverage(ReadsTheClassFromAPixel(), images_of([2, 5] * 50))
    assert half_and_half["evenness"] == pytest.approx(math.log(2) / math.log(10), rel=1e-12)
    assert half_and_half["classes_covered"] == 2


def test_a_class_is_covered_from_a_tenth_of_its_uniform_share():
    # 1,000 images, 10 classes: the uniform share is 100 images, a tenth of it 10 images.
    coverage = class_coverage(ReadsTheClassFromAPixel(), images_of([0] * 981 + [1] * 10 + [2] * 9))
    assert coverage["classes_covered"] == 2  # classes 0 and 1; class 2's 9 images are not enough


def test_class_accuracy_is_the_share_of_the_requested_class():
    stub = ReadsTheClassFromAPixel()
    images = images_of([0, 1, 2, 3])
    assert class_accuracy(stub, images, torch.tensor([0, 1, 2, 9])) == pytest.approx(0.75)
    assert class_accuracy(stub, images, torch.tensor([0, 1, 2, 3])) == 1.0
    with pytest.raises(ValueError, match="one label per image"):
        class_accuracy(stub, images, torch.tensor([0, 1]))


def test_metrics_refuse_images_outside_0_1_and_a_wrong_class_count():
    stub = ReadsTheClassFromAPixel()
    with pytest.raises(ValueError, match=r"pixel values in \[0, 1\].*sigmoid"):
        class_coverage(stub, images_of([1, 2]) * 4 - 2)  # a generator's logits, say
    with pytest.raises(ValueError, match="n_classes=5"):
        class_coverage(stub, images_of([1, 2]), n_classes=5)


# ---------------------------------------------------------------- the classifier network


def test_classifier_shapes_for_8x8_and_28x28():
    for shape in ((1, 8, 8), (1, 28, 28)):
        model = DigitClassifier(shape)
        x = torch.rand(3, *shape)
        assert model(x).shape == (3, 10)
        assert model.features(x).shape == (3, model.feature_dim)


def test_classifier_refuses_bad_shapes_clearly():
    with pytest.raises(ValueError, match="divisible by 4"):
        DigitClassifier((1, 10, 10))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        DigitClassifier((8, 8))
    with pytest.raises(ValueError, match=r"built for images of shape \(N, 1, 8, 8\)"):
        DigitClassifier()(torch.rand(3, 1, 28, 28))


# ---------------------------------------------------------------- the trained classifier


@contextlib.contextmanager
def one_thread():
    """Train on one CPU thread: this tiny network gains nothing from two, and loses a lot
    when other processes share the cores (threads wait for each other at every layer)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """(classifier, printed line, data folder): trained once, in an empty GENAI_DATA folder."""
    folder = tmp_path_factory.mktemp("genai_data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENAI_DATA", str(folder))
        out = io.StringIO()
        with one_thread(), contextlib.redirect_stdout(out):
            classifier = load_or_train_classifier(
                digits, pinned=False, progress=False, device="cpu"
            )
        yield classifier, out.getvalue(), folder


def test_the_classifier_is_accurate_on_held_out_digits(trained, digits):
    classifier, printed, folder = trained
    acc = accuracy(classifier, digits.val_images, digits.val_labels)
    assert acc >= 0.97, f"held-out accuracy {acc:.3f}"
    assert not classifier.training  # ready to measure: dropout off
    assert printed.startswith("Trained a digits classifier") and f"{100 * acc:.1f}%" in printed
    assert (folder / "classifiers" / "digits.pt").is_file()
    # GENAI_DATA, read at call time
    assert classifier_cache_path(digits) == folder / "classifiers" / "digits.pt"


def test_a_second_call_loads_the_cache(trained, digits, capsys):
    classifier, _, folder = trained
    loaded = load_or_train_classifier(
        digits, cache_dir=folder / "classifiers", pinned=False, steps=1, device="cpu"
    )
    assert capsys.readouterr().out.startswith("Loaded the digits classifier")
    for key, value in classifier.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert not loaded.training


def _truncate(path):
    path.write_bytes(path.read_bytes()[:500])


def _foreign(path):
    torch.save({"weights": torch.zeros(3)}, path)


def _other_network(path):
    state = ckpt.load_file(path)
    other = DigitClassifier(feature_dim=32)
    state["fingerprint"], state["model"] = ckpt.fingerprint(other), other.state_dict()
    ckpt.atomic_save(state, path)


@pytest.mark.parametrize(
    "spoil, reason",
    [
        (_truncate, "cannot be read"),
        (_foreign, "not a genai_lib"),
        (_other_network, "different network"),
    ],
)
def test_a_bad_cache_file_is_retrained_with_a_note(
    trained, digits, tmp_path, capsys, spoil, reason
):
    path = tmp_path / "digits.pt"
    path.write_bytes((trained[2] / "classifiers" / "digits.pt").read_bytes())
    spoil(path)
    with one_thread():
        load_or_train_classifier(
            digits, cache_dir=tmp_path, pinned=False, steps=20, progress=False, device="cpu"
        )
    out = capsys.readouterr().out
    assert out.startswith(f"Note: the cached classifier {path} cannot be used") and reason in out
    assert "Trained a digits classifier" in out
    # the file was overwritten: it loads
    load_or_train_classifier(digits, cache_dir=tmp_path, pinned=False, device="cpu")
    assert capsys.readouterr().out.startswith("Loaded")


def test_fd_digits_separates_real_from_fake(trained, digits):
    classifier, _, _ = trained
    n = len(digits.val_images)  # 359
    reference = held_out_sample(digits, n)
    floor = real_floor(classifier, digits, n)
    noise = fd_digits(
        classifier, torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)), reference
    )
    zeros_only = fd_digits(classifier, digits.train_images[digits.train_labels == 0][:n], reference)
    # Measured: floor about 4-5, noise about 130, only zeros about 320. Factors of 10 leave room
    # for another seed or torch version, and still fail for a metric that cannot tell them apart.
    assert floor < noise / 10 and floor < zeros_only / 10, (floor, noise, zeros_only)
    assert floor > 0


def test_the_floor_depends_on_the_sample_size(trained, digits):
    # FD from n samples is biased upwards, more for small n: values are comparable only at equal n.
    classifier, _, _ = trained
    # measured 26 vs 5
    assert real_floor(classifier, digits, 50) > 2 * real_floor(classifier, digits, 359)


def test_held_out_sample_is_a_repeatable_subset_of_the_validation_images(digits):
    a, b = held_out_sample(digits, 100, seed=3), held_out_sample(digits, 100, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, held_out_sample(digits, 100, seed=4))
    flat_val = digits.val_images.flatten(1)
    assert all((flat_val == row).all(dim=1).any() for row in a.flatten(1))
    with pytest.raises(ValueError, match="between 2 and the 359 held-out images"):
        held_out_sample(digits, 360)


def test_metrics_imports_nothing_a_person_sees():
    """The math stands alone: metrics.py imports none of viz, widgets, cli (nor matplotlib)."""
    tree = ast.parse(Path(metrics.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    assert "torch" in imported  # the check sees the imports
    banned = {"genai_lib.viz", "genai_lib.widgets", "genai_lib.cli", "matplotlib", "ipywidgets"}
    assert not {name for name in imported if name in banned or name.split(".")[0] in banned}


def test_importing_the_metrics_loads_no_training_code():
    """FD-digits is a formula: importing it loads torch and the configuration, not the loop, the data or a model.

    Getting a classifier does train (genai_lib.classifiers); chapters import it from the metrics by name,
    and it is loaded then, which also shows the check can see an import of the training loop.
    """
    probe = (
        "import sys, genai_lib.metrics as m; before = sorted(k for k in sys.modules if k.startswith('genai_lib'));"
        "m.load_or_train_classifier; print(before, 'genai_lib.train' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.strip().rsplit(" ", 1)
    assert before == str(["genai_lib", "genai_lib.config", "genai_lib.metrics"])
    assert after == "True"


# ---------------------------------------------------------------- the pinned classifier


def test_the_digits_load_the_pinned_classifier_everywhere(digits, capsys, tmp_path, monkeypatch):
    """Every machine scores digits with the same shipped weights, whatever its cache holds."""
    monkeypatch.setenv("GENAI_DATA", str(tmp_path))  # an empty cache: nothing is trained or written
    classifier = load_or_train_classifier(digits, device="cpu")
    out = capsys.readouterr().out
    assert out.startswith(
        "Loaded the course's pinned digits classifier (data/classifiers/digits.safetensors"
    )
    meta = json.loads((PINNED_DIR / "digits.json").read_text())
    acc = accuracy(classifier, digits.val_images, digits.val_labels)
    assert f"{100 * acc:.1f}%" in out and round(acc, 4) == meta["held_out_accuracy"]
    assert acc >= 0.97 and not classifier.training
    assert not (tmp_path / "classifiers").exists()
    # no machine path in a chapter's output
    assert str(tmp_path) not in out and "/" + "home" not in out


def _pinned_copy(tmp_path, steps=5):
    """A small pinned classifier written by pin_classifier into tmp_path."""
    with one_thread(), contextlib.redirect_stdout(io.StringIO()):
        pin_classifier(load_digits(), tmp_path, steps=steps, progress=False)
    return tmp_path


def test_pin_classifier_round_trip_and_its_checks(tmp_path):
    folder = _pinned_copy(tmp_path)
    meta = json.loads((folder / "digits.json").read_text())
    assert (
        meta["command"] == "python -m genai_lib pretrain --classifier"
        and meta["network"]["feature_dim"] == 64
    )
    loaded = load_pinned_classifier(load_digits(), folder, device="cpu")
    assert not loaded.training
    # one flipped byte in the weights: refused, with the way to restore or rebuild it
    weights = folder / "digits.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-3] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(
        ShippedWeightsError, match="does not match its recorded SHA-256.*pretrain --classifier"
    ):
        load_pinned_classifier(load_digits(), folder)
    weights.unlink()
    with pytest.raises(ShippedWeightsError, match="which is missing"):
        load_pinned_classifier(load_digits(), folder)
    (folder / "digits.json").write_text('{"weights_file": "dig')  # a truncated description
    with pytest.raises(ShippedWeightsError, match="not a readable description"):
        load_pinned_classifier(load_digits(), folder)
    with pytest.raises(ShippedWeightsError, match="No pinned digits classifier"):
        load_pinned_classifier(load_digits(), tmp_path / "nowhere")


def test_a_pinned_classifier_for_other_images_is_refused(tmp_path):
    folder = _pinned_copy(tmp_path)
    digits = load_digits()
    bigger = ImageData(
        "digits",
        torch.zeros(4, 1, 16, 16),
        torch.zeros(4, dtype=torch.long),
        torch.zeros(4, 1, 16, 16),
        torch.zeros(4, dtype=torch.long),
        digits.classes,
    )
    with pytest.raises(ShippedWeightsError, match=r"made for images \(1, 8, 8\).*\(1, 16, 16\)"):
        load_pinned_classifier(bigger, folder)


def test_labels_may_be_an_int_or_a_list_and_must_be_classes_of_the_classifier():
    stub = ReadsTheClassFromAPixel()
    images = images_of([3, 3, 3, 1])
    assert class_accuracy(stub, images, 3) == pytest.approx(0.75)  # an int: every image asked for 3
    assert accuracy(stub, images, [3, 3, 3, 3]) == pytest.approx(0.75)
    with pytest.raises(
        ValueError, match=r"labels must be classes of the classifier, 0 to 9; got 10"
    ):
        accuracy(stub, images, torch.full((4,), 10))
    with pytest.raises(ValueError, match="integers"):
        accuracy(stub, images, torch.zeros(4))
