"""Test corpora for the pipeline tests, built at run time from packaged photos (nothing committed)."""
from __future__ import annotations

import hashlib
import io
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image

TEST_KEY = b"pipeline-test-key"
A1111 = "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512"


def png_bytes(rgb: np.ndarray, text: dict | None = None) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def jpeg_bytes(rgb: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


def build_good(root: Path, photos: list[np.ndarray]) -> dict[str, str]:
    """Real photos, keyed-watermarked ones, an A1111 chunk and texts; returns rel path -> truth."""
    from provguard.watermark.image import create_image_watermark

    root.mkdir(parents=True, exist_ok=True)
    truth = {}
    marked = create_image_watermark("provguard", key=TEST_KEY).embed(photos[2:4], payload=7)
    files = {"real/a.jpg": (jpeg_bytes(photos[0]), "real"), "real/b.png": (png_bytes(photos[1]), "real"),
             "gen/wm_c.png": (png_bytes(marked[0]), "synthetic"), "gen/wm_d.png": (png_bytes(marked[1]), "synthetic"),
             "gen/a1111.png": (png_bytes(photos[4], {"parameters": A1111}), "synthetic"),
             "text/prose.txt": (b"The quick brown fox jumps over the lazy dog. " * 10, "real"),
             "text/rows.jsonl": (b'{"text": "first record"}\n{"text": "second record"}\n', "real")}
    for rel, (data, what) in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        truth[rel] = what
    return truth


def _png_bad_crc(rgb: np.ndarray) -> bytes:
    data = bytearray(png_bytes(rgb))
    data[29] ^= 0xFF  # inside the IHDR CRC
    return bytes(data)


def build_bad(root: Path, rgb: np.ndarray) -> list[str]:
    """Every kind of bad input the issue lists; returns the relative names that must be error rows."""
    bad = root / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    jpeg = jpeg_bytes(rgb)
    (bad / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (bad / "zero.png").write_bytes(b"")
    (bad / "badcrc.png").write_bytes(_png_bad_crc(rgb))
    Image.new("1", (12000, 12000)).save(bad / "bomb.png")
    (bad / "text.jpg").write_bytes(b"this is text, not a JPEG\n")
    (bad / "folder.png").mkdir()
    os.symlink("loop.png", bad / "loop.png")
    os.symlink("missing-target.png", bad / "dangling.png")
    frames = [Image.fromarray(rgb[:64, :64]), Image.fromarray(255 - rgb[:64, :64])]
    frames[0].save(bad / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    (bad / "rows.jsonl").write_bytes(b'{"body": "no text field here"}\n')
    (bad / "huge.txt").write_bytes(b"word " * (9 << 18))  # 9 MiB > the 8 MiB limit
    errors = ["bad/truncated.jpg", "bad/zero.png", "bad/badcrc.png", "bad/bomb.png", "bad/text.jpg", "bad/folder.png",
              "bad/loop.png", "bad/dangling.png", "bad/anim.gif", "bad/rows.jsonl#line=1", "bad/huge.txt"]
    # odd but valid: CMYK JPEG, 16-bit PNG, non-UTF-8 and very long names
    Image.fromarray(rgb).convert("CMYK").save(bad / "cmyk.jpg", quality=90)
    Image.fromarray((rgb[:, :, 0].astype(np.uint16) * 257)).save(bad / "grey16.png")
    (bad / os.fsdecode(b"latin1-\xe9t\xe9.png")).write_bytes(png_bytes(rgb[:128, :128]))
    (bad / ("long-" + "x" * 230 + ".png")).write_bytes(png_bytes(rgb[:128, :128]))
    return errors


def tree_digest(root: Path) -> str:
    """SHA-256 over every entry under ``root``: names, types, link targets and file contents."""
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(os.fsencode(root)):
        dirs.sort()
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]):
            p = os.path.join(dirpath, name)
            h.update(p + b"\0")
            if os.path.islink(p):
                h.update(b"L" + os.readlink(p))
            else:
                with open(p, "rb") as fh:
                    h.update(hashlib.sha256(fh.read()).digest())
        h.update(b"D" + dirpath + struct.pack("<I", len(dirs)))
    return h.hexdigest()


__all__ = ["A1111", "TEST_KEY", "build_bad", "build_good", "jpeg_bytes", "png_bytes", "tree_digest"]
