"""``python -m genai_lib doctor``: is this machine ready for the course, and how long will each chapter take?

It checks, and prints one line per check:

- Python, and every package the course needs, against the versions it asks for;
- the device: GPU name and memory, bf16 support, or the CPU's cores;
- the data that ships with the course (and the checksums of the shipped models), the
  optional datasets already downloaded, and whether the download cache is writable;
- a short micro-benchmark (a few training steps of the chapter 04 GPT), from
  which it estimates each chapter's run time here by scaling the times
  measured on the course's reference machine.

It exits with 1 when something a chapter needs is missing (a bug report asks
for its output), and 0 otherwise.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass

import torch

# Measured on the reference machine (2 cores of an Intel Xeon with AVX-512 and AMX, torch 2.13.0 CPU,
# 2026-12-03): the micro-benchmark's seconds per step, and each chapter's wall time in minutes, fast
# and default. (The earlier reference, 2 cores of an AMD EPYC, took 0.109 s per step.)
REFERENCE_STEP_S = 0.058  # median of 5 runs of micro_benchmark(steps=16): 0.056-0.061
REFERENCE_MINUTES = {  # chapter: (fast, default); the README's timing table (2026-12-03), where it explains each
    "00_welcome": (0.09, 0.18),
    "01a_vae_math": (0.09, 0.13),
    "01b_vae_practice": (0.18, 0.77),
    "02a_gan_theory": (0.17, 1.07),
    "02b_gan_practice": (0.54, 3.75),
    "03a_autoregressive_models": (0.17, 0.65),
    "03b_gpt": (0.45, 2.43),
    "04_finetuning": (0.55, 3.83),
    "05_diffusion": (0.48, 3.57),
    "06_scaling": (0.51, 3.55),
    "07_text_to_image": (0.66, 3.77),
}


@dataclass
class Check:
    section: str
    name: str
    ok: bool
    detail: str
    required: bool = True

    def line(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.required else "--  ")
        return f"  [{mark}] {self.name}: {self.detail}"


def check_python() -> list[Check]:
    ok = sys.version_info >= (3, 10)
    return [
        Check(
            "python",
            "Python",
            ok,
            f"{platform.python_version()} ({sys.executable})"
            + ("" if ok else "; the course needs 3.10 or newer"),
        )
    ]


def check_packages() -> list[Check]:
    """Every requirement of genai_lib and of its ``course`` extra, installed and of a suitable version."""
    from packaging.requirements import Requirement

    try:
        requirements = metadata.requires("genai_lib") or []
    except metadata.PackageNotFoundError:
        return [
            Check(
                "packages",
                "genai_lib",
                False,
                "not installed; run: pip install -r requirements.txt",
            )
        ]
    checks = [Check("packages", "genai_lib", True, metadata.version("genai_lib"))]
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": "course"}):
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            checks.append(
                Check(
                    "packages",
                    req.name,
                    False,
                    f"missing (wanted {req.specifier or 'any version'}); "
                    f"run: pip install -r requirements.txt",
                )
            )
            continue
        ok = req.specifier.contains(version, prereleases=True)
        checks.append(
            Check(
                "packages",
                req.name,
                ok,
                version + ("" if ok else f", but the course needs {req.name}{req.specifier}"),
            )
        )
    return checks


def check_device() -> list[Check]:
    from genai_lib.config import get_device

    try:
        device = get_device()
    except (
        ValueError
    ) as err:  # GENAI_DEVICE names a device this machine lacks: a failed check, not a crash
        return [
            Check(
                "device",
                "device",
                False,
                f"{err} (it comes from GENAI_DEVICE="
                f"{os.environ.get('GENAI_DEVICE')!r}: unset it or fix it)",
            ),
            Check(
                "device",
                "torch",
                True,
                f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'}",
            ),
        ]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        detail = (
            f"{props.name}, {props.total_memory / 2**30:.1f} GiB, bf16 "
            f"{'supported' if torch.cuda.is_bf16_supported() else 'not supported (fp16 with a scaler)'}"
        )
    elif device.type == "mps":
        detail = "Apple GPU (MPS), fp32"
    else:
        detail = (
            f"CPU, {torch.get_num_threads()} threads ({os.cpu_count()} logical cores); no GPU found, "
            f"so chapters run in CPU time (see the estimates below)"
        )
    return [
        Check("device", "device", True, f"{device}: {detail}"),
        Check(
            "device",
            "torch",
            True,
            f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'}",
        ),
    ]


def _try(section: str, name: str, fn, required: bool, missing_hint: str) -> Check:
    try:
        detail = fn()
        return Check(section, name, True, detail, required)
    except Exception as err:  # the check reports any failure rather than crashing the report
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return Check(section, name, False, f"{missing_hint} ({message[:160]})", required)


def check_data() -> list[Check]:
    from genai_lib.classifiers import load_pinned_classifier
    from genai_lib.config import download_dir
    from genai_lib.data import load_digits, load_mnist, load_text
    from genai_lib.pretrained import load_base

    checks = [
        _try(
            "data",
            "digits (embedded)",
            lambda: f"{len(load_digits().train_images):,} training images",
            True,
            "missing: scikit-learn's bundled digits could not be read",
        ),
        _try(
            "data",
            "pydoc text (embedded)",
            lambda: f"{len(load_text('pydoc')):,} characters",
            True,
            "missing: Python's pydoc topics could not be read",
        ),
        _try(
            "data",
            "stdlib source (embedded)",
            lambda: f"{len(load_text('stdlib')):,} characters",
            True,
            "missing: the standard library's source could not be read",
        ),
        _try(
            "data",
            "pretrained base (chapter 04)",
            lambda: f"SHA-256 {load_base()[2]['sha256'][:12]}... verified",
            True,
            "not usable",
        ),
        _try(
            "data",
            "digit classifier (FD-digits, chapters 02b, 05)",
            lambda: load_pinned_classifier(load_digits(), device="cpu") and "SHA-256 verified",
            True,
            "not usable",
        ),
    ]
    for name, fn in (
        ("MNIST", lambda: load_mnist("mnist")),
        ("Fashion-MNIST", lambda: load_mnist("fashion")),
        ("tiny Shakespeare", lambda: load_text("tinyshakespeare")),
    ):
        checks.append(
            _try(
                "data",
                f"{name} (optional)",
                lambda fn=fn: fn() and "downloaded, verified",
                False,
                "not downloaded; chapters ask for it only when you choose it",
            )
        )

    def writable() -> str:
        folder = download_dir()
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
        return f"{folder} is writable"

    checks.append(
        _try(
            "data",
            "download cache",
            writable,
            True,
            "not writable; set GENAI_DATA to a writable folder",
        )
    )
    return checks


def micro_benchmark(steps: int = 16, device: torch.device | None = None) -> float:
    """Median seconds per training step of chapter 04's GPT (4 layers, 128-d) on 16 windows of 128 tokens."""
    from genai_lib.config import get_device
    from genai_lib.models import GPT, GPTConfig

    device = device or get_device()
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=96, block_size=128, n_layer=4, n_head=4, n_embd=128)).to(
        device
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(96, (16, 128), device=device)
    times = []
    for i in range(steps + 2):  # two warm-up steps
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), x.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def estimates(step_s: float) -> list[str]:
    """One line per chapter: its estimated minutes here, fast and default, from the reference times."""
    scale = step_s / REFERENCE_STEP_S
    return [
        f"  {chapter:<27} fast ~{fast * scale:4.1f} min   default ~{full * scale:5.1f} min"
        for chapter, (fast, full) in REFERENCE_MINUTES.items()
    ] + [
        f"  {'all chapters':<27} fast ~{sum(f for f, _ in REFERENCE_MINUTES.values()) * scale:4.1f} min   "
        f"default ~{sum(d for _, d in REFERENCE_MINUTES.values()) * scale:5.1f} min"
    ]


def failures(checks: list[Check]) -> list[str]:
    """The names of the required checks that failed: the machine is ready when this is empty."""
    return [c.name for c in checks if c.required and not c.ok]


def run(benchmark: bool = True) -> tuple[list[Check], list[str]]:
    checks = check_python() + check_packages() + check_device() + check_data()
    lines = []
    if benchmark and not any(c.section == "device" and not c.ok for c in checks):
        step_s = micro_benchmark()
        lines = [
            f"micro-benchmark: {step_s * 1000:.0f} ms per GPT training step here, "
            f"{REFERENCE_STEP_S * 1000:.0f} ms on the reference machine (2 CPU cores). "
            f"Estimated chapter times (rough: chapters differ in what they compute):",
            *estimates(step_s),
        ]
    return checks, lines


def report(checks: list[Check], lines: list[str]) -> str:
    out, section = [], None
    for c in checks:
        if c.section != section:
            section = c.section
            out.append(section)
        out.append(c.line())
    out.extend(lines)
    failed = failures(checks)
    out.append(
        f"\nNOT READY: fix {', '.join(failed)}"
        if failed
        else "\nReady: everything the chapters need is here."
    )
    return "\n".join(out)
