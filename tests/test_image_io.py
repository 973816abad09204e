"""Image loading: every Pillow mode converts to uint8 RGB; bad files become clear InputErrors."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from provguard.errors import InputError
from provguard.imaging.io import decode_image, load_image, save_image

RGB = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "1", "P", "CMYK", "YCbCr", "I;16", "I", "F"])
def test_modes_are_converted(mode):
    base = Image.fromarray(RGB)
    if mode in ("I;16", "I", "F"):
        grey = np.asarray(base.convert("L"), dtype=np.float64)
        if mode == "I;16":
            img = Image.fromarray((grey * 257).astype(np.uint16))
        elif mode == "I":
            img = Image.fromarray((grey * 257).astype(np.int32))
        else:
            img = Image.fromarray((grey / 255).astype(np.float32))
        out = _to_rgb(img)
        np.testing.assert_allclose(out[..., 0], grey, atol=1)  # rescaled, not clipped to white
    else:
        out = _to_rgb(base.convert(mode))
    assert out.dtype == np.uint8 and out.shape == (40, 60, 3)


def _to_rgb(img):
    from provguard.imaging.io import _to_rgb8

    return _to_rgb8(img)


def test_rgba_keeps_the_stored_colours():
    rgba = Image.fromarray(RGB).convert("RGBA")
    rgba.putalpha(0)
    assert np.array_equal(decode_image(_encode(rgba, "PNG")), RGB)


def test_palette_with_transparency_and_16_bit_png_files(tmp_path):
    pal = Image.fromarray(RGB).convert("P", palette=Image.ADAPTIVE)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    assert load_image(tmp_path / "p.png").shape == (40, 60, 3)
    Image.fromarray((np.arange(40 * 60).reshape(40, 60) * 27).astype(np.uint16)).save(tmp_path / "g16.png")
    out = load_image(tmp_path / "g16.png")
    assert out.max() > 200  # 16-bit range scaled down, not saturated or truncated to the low byte


def test_bad_files(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_image(tmp_path / "empty.jpg")
    (tmp_path / "text.png").write_text("hello, not an image")
    with pytest.raises(InputError, match="not an image"):
        load_image(tmp_path / "text.png")
    data = _encode(Image.fromarray(RGB), "JPEG")
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_image(tmp_path / "trunc.jpg")
    frames = [Image.fromarray(RGB), Image.fromarray(255 - RGB)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(InputError, match="animated image with 2 frames"):
        load_image(tmp_path / "anim.gif")


def test_decompression_bomb_is_refused(monkeypatch):
    data = _encode(Image.fromarray(RGB), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 2,400 pixels > limit
    with pytest.raises(InputError, match="decompression bomb"):
        decode_image(data)


def test_save_is_atomic_and_gif_becomes_png(tmp_path):
    path = save_image(RGB, tmp_path / "sub" / "x.gif")
    assert path.suffix == ".png" and np.array_equal(load_image(path), RGB)
    assert not list(tmp_path.rglob("*.partial"))
