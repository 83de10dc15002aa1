"""Move a slider, see the decoder's image: a latent space explored by hand.

Only basic ipywidgets (sliders, an image, boxes, labels), so the explorer
works the same in classic Jupyter, JupyterLab and Colab, with ipywidgets 7 or 8.
"""

from __future__ import annotations

import html
import io
import warnings
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image as PILImage
from torch import Tensor

_NEAREST = getattr(PILImage, "Resampling", PILImage).NEAREST  # Pillow >= 9.1 has Image.Resampling


def latent_explorer(
    decode: Callable[[Tensor], Tensor],
    latent_dim: int,
    n_sliders: int | None = None,
    value_range: float = 3.0,
    base: Tensor | None = None,
    scale: int = 24,
    title: str = "Move a slider to change z; the image is decode(z)",
) -> widgets.VBox:
    """Sliders for the first ``n_sliders`` coordinates of z, and the image ``decode(z)``, redrawn as they move.

    ``decode(z)`` takes a latent code ``(1, latent_dim)`` and returns one image
    ``(1, C, H, W)`` with values in [0, 1] and C = 1 (grey: drawn as dark ink
    on white, like :func:`genai_lib.viz.show_images`) or C = 3 (RGB). Pass
    probabilities, not logits: ``lambda z: torch.sigmoid(model.decode(z))``.
    It runs under ``torch.no_grad()``.

    The sliders, named z_1 ... z_k, span ``[-value_range, value_range]``
    (widened where ``base`` lies outside) and start at ``base``, a code
    ``(latent_dim,)`` or ``(1, latent_dim)`` that defaults to zeros, the
    prior's mode. The coordinates without a slider stay at ``base``. z is
    built with ``base``'s dtype and device: pass a ``base`` on the GPU for a
    decoder that lives there. The image is upscaled ``scale`` times,
    nearest-neighbour, so each pixel stays a sharp square.

    Returns the box to display. ``box.sliders`` (the FloatSliders) and
    ``box.image`` (the Image widget, PNG bytes in ``.value``) let a notebook
    or a test drive it: setting ``box.sliders[0].value = 1.5`` redraws.
    """
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be at least 1; got {latent_dim}.")
    n_sliders = min(latent_dim, 8) if n_sliders is None else n_sliders
    if not 1 <= n_sliders <= latent_dim:
        raise ValueError(
            f"n_sliders must be between 1 and latent_dim={latent_dim}; got {n_sliders}."
        )
    if value_range <= 0:
        raise ValueError(f"value_range must be positive; got {value_range}.")
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive whole number; got {scale!r}.")
    if base is None:
        base = torch.zeros(latent_dim)
    base = base.detach().reshape(-1)
    if base.numel() != latent_dim:
        raise ValueError(
            f"base must hold one latent code of size {latent_dim}; got shape {tuple(base.shape)}."
        )
    if not base.is_floating_point():
        base = base.float()

    sliders = [
        widgets.FloatSlider(
            value=float(b),
            min=min(-value_range, float(b)),
            max=max(value_range, float(b)),
            step=value_range / 100,
            description=f"z_{i + 1}",
            readout_format=".2f",
            continuous_update=True,
        )
        for i, b in enumerate(base[:n_sliders].tolist())
    ]

    def current_png() -> bytes:
        z = base.clone()
        z[:n_sliders] = torch.tensor(
            [s.value for s in sliders], dtype=base.dtype, device=base.device
        )
        with torch.no_grad():
            image = decode(z.unsqueeze(0))  # (1, latent_dim) -> (1, C, H, W)
        return image_to_png(image, scale)

    image = widgets.Image(value=current_png(), format="png")  # raises here if decode is wrong

    def redraw(change: dict) -> None:
        image.value = current_png()

    for slider in sliders:
        slider.observe(redraw, names="value")

    rows: list[widgets.Widget] = [widgets.HTML(f"<b>{html.escape(title)}</b>")]
    rows.append(widgets.HBox([widgets.VBox(sliders), image]))
    if n_sliders < latent_dim:
        held = (
            f"z_{n_sliders + 1}"
            if n_sliders + 1 == latent_dim
            else f"z_{n_sliders + 1} ... z_{latent_dim}"
        )
        rows.append(widgets.Label(f"{held} held fixed at base."))
    box = widgets.VBox(rows)
    box.sliders = sliders
    box.image = image
    return box


def image_to_png(image: Tensor, scale: int = 1) -> bytes:
    """One image ``(1, C, H, W)`` in [0, 1] -> PNG bytes of ``(H * scale, W * scale)`` pixels.

    C = 1 is drawn as ink (1 = black, 0 = white); C = 3 as RGB.
    """
    if (
        not isinstance(image, Tensor)
        or image.dim() != 4
        or image.shape[0] != 1
        or image.shape[1] not in (1, 3)
    ):
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(
            f"decode(z) must return one image of shape (1, C, H, W) with C = 1 or 3; got {shape}."
        )
    pixels = image[0].detach().float().cpu()  # (C, H, W)
    if not torch.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 1:
        raise ValueError(
            f"decode(z) must return values in [0, 1]; got values from {pixels.min().item():.3g} "
            f"to {pixels.max().item():.3g}. If your decoder returns logits, pass "
            f"lambda z: torch.sigmoid(model.decode(z))."
        )
    if pixels.shape[0] == 1:
        array = np.asarray(((1 - pixels[0]) * 255).round(), dtype=np.uint8)  # (H, W), ink is dark
    else:
        array = np.asarray((pixels.permute(1, 2, 0) * 255).round(), dtype=np.uint8)  # (H, W, 3)
    picture = PILImage.fromarray(array)
    picture = picture.resize((picture.width * scale, picture.height * scale), _NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def image_grid_to_png(
    images: Tensor, nrow: int = 8, scale: int = 4, check_range: bool = True
) -> bytes:
    """A batch ``(N, C, H, W)`` in [0, 1] tiled into one PNG (ink dark on white for grey images).

    Values outside [0, 1] are clamped; with ``check_range``, a warning says so
    when they look like 0..255 images or tanh outputs.
    """
    from genai_lib.viz import make_grid, range_warning  # the grid show_images draws

    message = range_warning(images, who="image_grid_to_png") if check_range else None
    if message:
        warnings.warn(message, stacklevel=3)

    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, pad_value=0.25)
    return image_to_png(grid.unsqueeze(0), scale)


def interpolation_explorer(
    decode: Callable[[Tensor], Tensor],
    z_start: Tensor,
    z_end: Tensor,
    scale: int = 24,
    title: str = "Slide t: z = (1 - t) z_start + t z_end",
) -> widgets.VBox:
    """One slider t in [0, 1] and the image ``decode((1 - t) z_start + t z_end)``.

    ``z_start``, ``z_end``: codes ``(latent_dim,)``; ``decode`` as in :func:`latent_explorer`.
    """
    if z_start.shape != z_end.shape or z_start.dim() != 1:
        raise ValueError(
            f"z_start and z_end must be two codes of the same size; got {tuple(z_start.shape)} "
            f"and {tuple(z_end.shape)}."
        )
    slider = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.02, description="t")

    def current_png() -> bytes:
        z = (1 - slider.value) * z_start + slider.value * z_end
        with torch.no_grad():
            return image_to_png(decode(z.unsqueeze(0)), scale)

    image = widgets.Image(value=current_png(), format="png")
    slider.observe(lambda change: setattr(image, "value", current_png()), names="value")
    box = widgets.VBox(
        [widgets.HTML(f"<b>{html.escape(title)}</b>"), widgets.HBox([slider, image])]
    )
    box.sliders, box.image = [slider], image
    return box


def class_explorer(
    generate_class: Callable[[int, int], Tensor],
    classes: list[str],
    nrow: int = 8,
    scale: int = 4,
    title: str = "Pick a class; the generator draws it",
) -> widgets.VBox:
    """A class picker and a grid of generated images of that class.

    ``generate_class(label, seed)`` returns images ``(N, C, H, W)`` in [0, 1];
    the "new noise" button draws a fresh seed.
    """
    picker = widgets.Dropdown(
        options=[(name, i) for i, name in enumerate(classes)], value=0, description="class"
    )
    button = widgets.Button(description="new noise")
    seed = {"value": 0}

    def current_png() -> bytes:
        with torch.no_grad():
            return image_grid_to_png(
                generate_class(picker.value, seed["value"]), nrow=nrow, scale=scale
            )

    image = widgets.Image(value=current_png(), format="png")

    def redraw(*_: object) -> None:
        image.value = current_png()

    def new_noise(_: object) -> None:
        seed["value"] += 1
        redraw()

    picker.observe(redraw, names="value")
    button.on_click(new_noise)
    box = widgets.VBox(
        [widgets.HTML(f"<b>{html.escape(title)}</b>"), widgets.HBox([picker, button]), image]
    )
    box.picker, box.button, box.image = picker, button, image
    return box


def sampling_explorer(
    complete: Callable[[float, float, int], str],
    prompt: str = "",
    title: str = "Move the sliders; the model writes again",
) -> widgets.VBox:
    """Temperature and top-p sliders, a "new sample" button, and the text they give.

    ``complete(temperature, top_p, seed)`` returns the generated text (the
    prompt is shown in bold before it). For a GPT and a tokenizer::

        def complete(t, p, seed):
            ids = generate(model, prompt_ids, 300, temperature=t, top_p=p, seed=seed)
            return tok.decode(ids[len(prompt_ids):])

    The same seed is kept while the sliders move, so a change in the text
    comes from the change in the settings, not from a new draw.
    """
    temperature = widgets.FloatSlider(
        value=1.0,
        min=0.0,
        max=2.0,
        step=0.05,
        description="temperature",
        continuous_update=False,
        style={"description_width": "initial"},
    )
    top_p = widgets.FloatSlider(
        value=1.0, min=0.05, max=1.0, step=0.05, description="top-p", continuous_update=False
    )
    button = widgets.Button(description="new sample")
    output = widgets.HTML()
    seed = {"value": 0}

    def redraw(*_: object) -> None:
        with torch.no_grad():
            text = complete(temperature.value, top_p.value, seed["value"])
        output.value = (
            f"<pre style='white-space: pre-wrap'><b>{html.escape(prompt)}</b>"
            f"{html.escape(text)}</pre>"
        )

    def new_sample(_: object) -> None:
        seed["value"] += 1
        redraw()

    redraw()  # raises here if complete is wrong
    temperature.observe(redraw, names="value")
    top_p.observe(redraw, names="value")
    button.on_click(new_sample)
    box = widgets.VBox(
        [
            widgets.HTML(f"<b>{html.escape(title)}</b>"),
            widgets.HBox([temperature, top_p, button]),
            output,
        ]
    )
    box.temperature, box.top_p, box.button, box.output = temperature, top_p, button, output
    return box


def trajectory_explorer(
    frames: Tensor,
    timesteps: list[int] | None = None,
    nrow: int = 8,
    scale: int = 4,
    title: str = "Slide through the denoising: from pure noise to digits",
) -> widgets.VBox:
    """A slider over the frames of a sampling trajectory, and the grid of images at that frame.

    ``frames (K, N, C, H, W)`` in [0, 1]: frame 0 is the starting noise, frame
    K - 1 the finished samples (a sampler's trajectory, mapped to [0, 1]).
    ``timesteps``: the diffusion step each frame sits at, shown beside the
    slider (K values); by default the frame's index.
    """
    if not isinstance(frames, Tensor) or frames.dim() != 5:
        shape = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
        raise ValueError(
            f"frames must be a tensor (K, N, C, H, W): K frames of N images; got {shape}."
        )
    if timesteps is not None and len(timesteps) != len(frames):
        raise ValueError(
            f"timesteps must give one step per frame ({len(frames)}); got {len(timesteps)}."
        )
    # drawn once, shown instantly; only the finished samples are checked for their range,
    # since noise frames legitimately go past [0, 1]
    last = len(frames) - 1
    pngs = [
        image_grid_to_png(frame, nrow=nrow, scale=scale, check_range=k == last)
        for k, frame in enumerate(frames)
    ]
    slider = widgets.IntSlider(
        value=0, min=0, max=len(frames) - 1, description="frame", continuous_update=True
    )
    label = widgets.Label()
    image = widgets.Image(value=pngs[0], format="png")

    def redraw(*_: object) -> None:
        k = slider.value
        image.value = pngs[k]
        label.value = (
            f"t = {timesteps[k]}" if timesteps is not None else f"frame {k} of {len(frames) - 1}"
        )

    slider.observe(redraw, names="value")
    redraw()
    box = widgets.VBox(
        [widgets.HTML(f"<b>{html.escape(title)}</b>"), widgets.HBox([slider, label]), image]
    )
    box.sliders, box.image, box.label = [slider], image, label
    return box


def prompt_explorer(
    draw: Callable[[str, float, int], Tensor],
    prompt: str = "a thin 4",
    guidance: float = 2.0,
    max_guidance: float = 6.0,
    nrow: int = 8,
    scale: int = 4,
    title: str = "Type a prompt and press Enter; the model draws it",
) -> widgets.VBox:
    """A text box, a guidance slider, a "new noise" button, and the grid ``draw(prompt, guidance, seed)`` returns.

    ``draw`` returns images ``(N, C, H, W)`` in [0, 1]. A ``ValueError`` it
    raises (an empty prompt, a word the tokenizer does not know) is shown
    under the box in place of the images, and the last grid stays.
    """
    text = widgets.Text(value=prompt, description="prompt", continuous_update=False)
    slider = widgets.FloatSlider(
        value=guidance,
        min=0.0,
        max=max_guidance,
        step=0.5,
        description="guidance s",
        continuous_update=False,
        style={"description_width": "initial"},
    )
    button = widgets.Button(description="new noise")
    message = widgets.HTML()
    seed = {"value": 0}
    image = widgets.Image(format="png")

    def redraw(*_: object) -> None:
        try:
            with torch.no_grad():
                images = draw(text.value, slider.value, seed["value"])
        except ValueError as err:
            message.value = f"<span style='color: #b00'>{html.escape(str(err))}</span>"
            return
        image.value = image_grid_to_png(images, nrow=nrow, scale=scale)
        message.value = f"<i>{html.escape(text.value)}</i>, s = {slider.value:g}"

    def new_noise(_: object) -> None:
        seed["value"] += 1
        redraw()

    redraw()
    if not image.value:  # the first prompt itself failed: say so here, not in a blank widget
        raise ValueError(f"The first prompt {prompt!r} could not be drawn: {message.value}")
    text.observe(redraw, names="value")
    slider.observe(redraw, names="value")
    button.on_click(new_noise)
    box = widgets.VBox(
        [
            widgets.HTML(f"<b>{html.escape(title)}</b>"),
            widgets.HBox([text, slider, button]),
            message,
            image,
        ]
    )
    box.text, box.slider, box.button, box.message, box.image = text, slider, button, message, image
    return box
