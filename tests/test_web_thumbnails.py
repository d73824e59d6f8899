"""Thumbnails of rendered frames: PNG, TIFF, 16-bit, a real OpenEXR from POV-Ray, and placeholders."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import require_tool
from envy.render.thumbnails import THUMB_SIZE, make_thumbnail, placeholder, thumb_path, write_thumbnail
from envy.share.fs import REAL_FS, ShareFS
from envy.share.layout import ShareLayout, init_share

SCENE = """#version 3.7;
global_settings { assumed_gamma 1.0 }
camera { location <0, 1, -4> look_at <0, 0.5, 0> }
light_source { <2, 4, -3> color rgb 4 }
sphere { <0, 0.5, 0>, 0.5 pigment { color rgb <1, 0.4, 0.1> } finish { emission 2 } }
plane { y, 0 pigment { checker color rgb 1 color rgb 0.2 } }
background { color rgb <0.1, 0.3, 0.8> }
"""


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    return img


def gradient(width: int = 640, height: int = 480) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.float32)
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    rgb[..., 0] = x
    rgb[..., 2] = 255 - x
    return rgb


@pytest.mark.parametrize("fmt, ext", [("PNG", ".png"), ("TIFF", ".tif"), ("JPEG", ".jpg")])
def test_common_formats_become_a_small_jpeg(tmp_path: Path, fmt: str, ext: str) -> None:
    src = tmp_path / f"shot.0001{ext}"
    Image.fromarray(gradient()).save(src, fmt)
    data = make_thumbnail(src, REAL_FS)
    img = decoded(data)
    assert max(img.size) == THUMB_SIZE and img.size == (THUMB_SIZE, THUMB_SIZE * 3 // 4)
    assert len(data) < 12_000, f"{len(data)} bytes is not a few KB"
    left, right = img.getpixel((2, 50)), img.getpixel((img.width - 3, 50))
    assert left[2] > 200 > left[0] and right[0] > 200 > right[2], "the picture survives, not a placeholder"


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    src = tmp_path / "deep.png"
    Image.fromarray(np.full((64, 64), 32768, dtype=np.uint16)).save(src)
    grey = decoded(make_thumbnail(src, REAL_FS)).getpixel((10, 10))
    assert 110 < grey[0] < 145, grey


def test_real_exr_from_povray_is_tone_mapped(tmp_path: Path) -> None:
    require_tool("povray")
    (tmp_path / "s.pov").write_text(SCENE)
    subprocess.run(
        ["povray", "+Is.pov", "+Os.exr", "+FE", "+W320", "+H240", "-D", "+A0.3"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=60,
    )
    exr = tmp_path / "s.exr"
    assert exr.read_bytes()[:4] == b"\x76\x2f\x31\x01", "POV-Ray wrote a real OpenEXR"
    img = decoded(make_thumbnail(exr, REAL_FS))
    assert img.size == (THUMB_SIZE, THUMB_SIZE * 3 // 4)
    pixels = np.asarray(img, dtype=np.float32)
    assert pixels.std() > 10, "an image, not a flat tile"
    sky = pixels[5, 5]
    assert sky[2] > sky[0] + 30, f"the blue background reads blue after tone mapping: {sky}"
    assert pixels.max() < 255.5 and (pixels >= 254).mean() < 0.5, "the bright sphere is compressed, not all clipped"


@pytest.mark.parametrize(
    "name, content, says",
    [
        ("shot.0001.vdb", b"not an image at all", "no preview for .vdb"),
        ("shot.0001.png", b"\x89PNG\r\n\x1a\ntruncated", "no preview for .png"),
        ("shot.0001.exr", b"\x76\x2f\x31\x01garbage", "no preview for .exr"),
    ],
)
def test_unreadable_files_get_a_placeholder_that_says_so(tmp_path: Path, name: str, content: bytes, says: str) -> None:
    src = tmp_path / name
    src.write_bytes(content)
    data = make_thumbnail(src, REAL_FS)
    assert data == placeholder(says), f"the placeholder says {says!r}"
    pixels = np.asarray(decoded(data), dtype=np.int16)
    assert pixels.std() > 1, "the placeholder carries text"
    assert np.abs(pixels[..., 0] - pixels[..., 2]).max() < 12, "a grey tile, not a picture"


def test_missing_image_and_failing_share_never_raise(tmp_path: Path) -> None:
    layout = ShareLayout(tmp_path / "share")
    init_share(layout.root, "ana", REAL_FS)
    (layout.jobs_dir / "job1").mkdir()
    assert decoded(make_thumbnail(tmp_path / "gone.png", REAL_FS))

    class FullDisk(ShareFS):
        def write_new(self, path, data):  # type: ignore[no-untyped-def]
            raise OSError(28, "No space left on device")

    src = tmp_path / "a.png"
    Image.fromarray(gradient(64, 48)).save(src)
    assert write_thumbnail(layout, "job1", "a", src, FullDisk()) is None
    assert not list((layout.jobs_dir / "job1" / "thumbs").iterdir()), "no temp file left behind"


def test_write_thumbnail_publishes_beside_the_job_files(tmp_path: Path) -> None:
    layout = ShareLayout(tmp_path / "share")
    init_share(layout.root, "ana", REAL_FS)
    src = tmp_path / "shot.0007.png"
    Image.fromarray(gradient(64, 48)).save(src)
    path = write_thumbnail(layout, "20261201-090000-shot-ab12", "shot.0007", src, REAL_FS)
    assert path == thumb_path(layout, "20261201-090000-shot-ab12", "shot.0007")
    assert path is not None and path.parent == layout.jobs_dir / "20261201-090000-shot-ab12" / "thumbs"
    assert decoded(path.read_bytes()).size == (64, 48), "small images are not enlarged"
    assert [p.name for p in path.parent.iterdir()] == ["shot.0007.jpg"]


def test_unmounted_share_gets_no_thumbs_tree(tmp_path: Path) -> None:
    layout = ShareLayout(tmp_path / "unmounted")
    src = tmp_path / "a.png"
    Image.fromarray(gradient(64, 48)).save(src)
    assert write_thumbnail(layout, "job1", "a", src, REAL_FS) is None
    assert not layout.root.exists()
