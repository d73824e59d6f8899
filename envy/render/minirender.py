"""Envy's small built-in renderer: the demo scene drawn in pure Python, written as a real PNG.

Used by ``envy demo`` when POV-Ray is not installed. It reads a tiny JSON
scene (``{"clock": 0.25, "width": 320, "height": 240}``), ray-casts a ball
bouncing over a checkered floor, prints progress the way POV-Ray does
(``\\r``-separated), and exits non-zero with a message on bad input.

    python -m envy.render.minirender demo.0007.envyscene -o demo.0007.png
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

Color = tuple[float, float, float]


def _png(path: Path, width: int, height: int, rows: list[bytes]) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rows)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    path.write_bytes(data)


def _shade(x: float, y: float, clock: float) -> Color:
    """Colour of one pixel: camera at (0, 1.2, -5) looking along +z."""
    ox, oy, oz = 0.0, 1.2, -5.0
    dx, dy, dz = x, y, 1.6
    n = math.sqrt(dx * dx + dy * dy + dz * dz)
    dx, dy, dz = dx / n, dy / n, dz / n
    cx, cy, cz, r = -2.0 + 4.0 * clock, 0.5 + abs(math.sin(clock * 3 * math.pi)) * 1.4, 0.0, 0.5
    lx, ly, lz = -0.5, 0.8, -0.4
    ln = math.sqrt(lx * lx + ly * ly + lz * lz)
    lx, ly, lz = lx / ln, ly / ln, lz / ln
    # Sphere hit.
    px, py, pz = ox - cx, oy - cy, oz - cz
    b = px * dx + py * dy + pz * dz
    c = px * px + py * py + pz * pz - r * r
    disc = b * b - c
    if disc > 0:
        t = -b - math.sqrt(disc)
        if t > 0:
            hx, hy, hz = ox + t * dx - cx, oy + t * dy - cy, oz + t * dz - cz
            lam = max(0.0, (hx * lx + hy * ly + hz * lz) / r)
            return (0.15 + 0.85 * lam, 0.07 + 0.45 * lam, 0.02 + 0.1 * lam)
    # Floor hit (y = 0).
    if dy < 0:
        t = -oy / dy
        fx, fz = ox + t * dx, oz + t * dz
        checker = (math.floor(fx * 1.25) + math.floor(fz * 1.25)) % 2
        base = (0.85, 0.85, 0.8) if checker else (0.25, 0.3, 0.4)
        # Shadow: does the way to the light cross the ball?
        sx, sy, sz = fx - cx, -cy, fz - cz
        sb = sx * lx + sy * ly + sz * lz
        shadow = 0.45 if sb < 0 and sb * sb - (sx * sx + sy * sy + sz * sz - r * r) > 0 else 1.0
        fade = min(1.0, 8.0 / (t + 1.0))
        return tuple(ch * shadow * fade for ch in base)  # type: ignore[return-value]
    return (0.12, 0.14, 0.2 + 0.2 * dy)


def render(scene: dict, output: Path) -> None:
    width, height = int(scene.get("width", 320)), int(scene.get("height", 240))
    clock = float(scene.get("clock", 0.0))
    if not (0 < width <= 4096 and 0 < height <= 4096):
        raise ValueError("width and height must be 1..4096")
    rows: list[bytes] = []
    aspect = width / height
    for j in range(height):
        row = bytearray()
        for i in range(width):
            x = (2 * (i + 0.5) / width - 1) * aspect
            y = 1 - 2 * (j + 0.5) / height
            for ch in _shade(x, y, clock):
                row.append(max(0, min(255, int(ch * 255))))
        rows.append(bytes(row))
        if j % 16 == 0 or j == height - 1:
            done = (j + 1) * width
            sys.stderr.write(f"\rRendered {done} of {width * height} pixels ({100 * done // (width * height)}%)")
            sys.stderr.flush()
    sys.stderr.write("\n")
    _png(output, width, height, rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="envy-minirender", description=__doc__.splitlines()[0])
    parser.add_argument("scene")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    try:
        scene = json.loads(Path(args.scene).read_text(encoding="utf-8"))
        if not isinstance(scene, dict):
            raise ValueError("the scene must be a JSON object")
        render(scene, Path(args.output))
    except (OSError, ValueError) as exc:
        print(f"envy-minirender: error: {exc}", file=sys.stderr)
        return 1
    print(f"envy-minirender: wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
