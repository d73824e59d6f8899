"""Small previews of rendered frames, made once by the agent that completed the frame (issue 12 §4).

A viewer on the network never reads a 50 MB image to draw a tile: the agent,
which has just written the image, makes a JPEG of a few KB and publishes it
beside the job's Envy files, ``jobs/<job id>/thumbs/<item>.jpg``, atomically
(ENGINEERING §1.2). PNG, JPEG, TIFF and most formats Pillow reads are scaled
down; OpenEXR (linear, high dynamic range) is read with the OpenEXR bindings
and tone-mapped; anything else gets a placeholder saying "no preview for
.xyz". Nothing here raises into the caller: a preview is never worth a frame.
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

from envy.share.atomic import atomic_write
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout, make_dirs_within

log = logging.getLogger(__name__)

THUMB_SIZE = 192  # longest side in pixels: a grid tile, and small enough for a few KB
PREVIEW_QUALITY = 70
# An image larger than this is not read for a preview (bounds the agent's time and memory).
MAX_SOURCE_BYTES = 512 * 1024 * 1024
MAX_SOURCE_PIXELS = 100_000_000
THUMBS_FOLDER = "thumbs"
THUMB_EXT = ".jpg"


def thumbs_dir(layout: ShareLayout, job_id: str) -> Path:
    return layout.jobs_dir / job_id / THUMBS_FOLDER


def thumb_path(layout: ShareLayout, job_id: str, item_base: str) -> Path:
    return thumbs_dir(layout, job_id) / f"{item_base}{THUMB_EXT}"


def make_thumbnail(image: Path, fs: ShareFS, size: int = THUMB_SIZE) -> bytes:
    """A JPEG preview of ``image`` (or a placeholder saying why there is none). Never raises."""
    try:
        return _encode(_load(image, fs), size)
    except Exception as exc:  # noqa: BLE001 - a broken, huge or exotic image must not reach the frame
        log.info("no preview for %s: %s", image, exc)
        return placeholder(_reason(image, exc), size)


def write_thumbnail(
    layout: ShareLayout, job_id: str, item_base: str, image: Path, fs: ShareFS, size: int = THUMB_SIZE
) -> Path | None:
    """Make the preview of ``image`` and publish it for the job's item; None (logged) when that failed."""
    started = time.monotonic()
    try:
        data = make_thumbnail(image, fs, size)
        make_dirs_within(layout.jobs_dir, job_id, THUMBS_FOLDER)
        path = thumb_path(layout, job_id, item_base)
        atomic_write(path, data, fs)
    except Exception as exc:  # noqa: BLE001 - see make_thumbnail
        log.warning("cannot write the preview of %s: %s", image, exc)
        return None
    log.debug("preview of %s: %d bytes in %.2f s", image.name, len(data), time.monotonic() - started)
    return path


class _Unreadable(Exception):
    """The format is not one we can show."""


def _reason(image: Path, exc: Exception) -> str:
    if isinstance(exc, _Unreadable):
        return str(exc)
    return f"no preview for {image.suffix.lower() or image.name}"


def _load(image: Path, fs: ShareFS):  # type: ignore[no-untyped-def]  # -> PIL.Image.Image
    from PIL import Image

    size = fs.stat(image).st_size
    if size > MAX_SOURCE_BYTES:
        raise _Unreadable(f"{image.suffix.lower()} too large for a preview")
    data = fs.read_bytes(image)
    if data[:4] == b"\x76\x2f\x31\x01":  # the OpenEXR magic number
        return _load_exr(data)
    Image.MAX_IMAGE_PIXELS = MAX_SOURCE_PIXELS
    try:
        img = Image.open(io.BytesIO(data))
        img.draft("RGB", (THUMB_SIZE * 2, THUMB_SIZE * 2))  # JPEG: decode at a reduced size
        img.load()
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for files it cannot read
        raise _Unreadable(f"no preview for {image.suffix.lower() or image.name}") from None
    return _to_rgb(img)


def _to_rgb(img):  # type: ignore[no-untyped-def]
    """8-bit RGB from whatever Pillow read: 16-bit and float images are scaled, not clipped."""
    import numpy as np
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32)
        arr = arr / (65535.0 if img.mode.startswith("I;16") else max(1.0, float(arr.max())))
        return Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8)).convert("RGB")
    if img.mode == "F":
        return _tone_map(np.asarray(img, dtype=np.float32)[..., None].repeat(3, axis=2))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, (40, 40, 40, 255))  # transparent areas as the page's dark grey
        return Image.alpha_composite(backdrop, rgba).convert("RGB")
    return img.convert("RGB")


def _load_exr(data: bytes):  # type: ignore[no-untyped-def]
    import numpy as np
    import OpenEXR  # type: ignore[import-not-found]  # the bindings ship no type stubs

    exr = OpenEXR.File(io.BytesIO(data))
    channels = exr.channels()
    if "RGB" in channels or "RGBA" in channels:
        rgb = np.asarray(channels.get("RGB", channels.get("RGBA")).pixels, dtype=np.float32)[..., :3]
    elif all(c in channels for c in "RGB"):
        rgb = np.stack([np.asarray(channels[c].pixels, dtype=np.float32) for c in "RGB"], axis=-1)
    elif channels:
        name = "Y" if "Y" in channels else min(channels)
        grey = np.asarray(channels[name].pixels, dtype=np.float32)
        rgb = (grey[..., None] if grey.ndim == 2 else grey[..., :1]).repeat(3, axis=2)
    else:
        raise _Unreadable("no preview: the .exr has no channels")
    return _tone_map(rgb)


def _tone_map(linear):  # type: ignore[no-untyped-def]
    """Linear HDR to display: Reinhard (x / (1 + x)), then the sRGB curve; NaN and inf become black."""
    import numpy as np
    from PIL import Image

    x = np.nan_to_num(np.asarray(linear, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    x = np.clip(x, 0.0, None)
    x = x / (1.0 + x)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return Image.fromarray((np.clip(srgb, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")


def _encode(img, size: int) -> bytes:  # type: ignore[no-untyped-def]
    img.thumbnail((size, size))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=PREVIEW_QUALITY, optimize=True)
    return out.getvalue()


def placeholder(text: str, size: int = THUMB_SIZE) -> bytes:
    """A grey tile that says why there is no preview."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size * 3 // 4), (60, 60, 60))
    draw = ImageDraw.Draw(img)
    words, lines, line = text.split(), [], ""
    for word in words:  # wrap to the tile's width
        if line and draw.textlength(f"{line} {word}") > size - 16:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    y = (img.height - 14 * len(lines)) // 2
    for text_line in lines:
        draw.text(((size - draw.textlength(text_line)) // 2, y), text_line, fill=(220, 220, 220))
        y += 14
    out = io.BytesIO()
    img.save(out, "JPEG", quality=PREVIEW_QUALITY)
    return out.getvalue()
