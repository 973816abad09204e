"""Stealth metadata: generation parameters hidden in the least significant bits of the pixels.

Written by the AUTOMATIC1111/Forge "stealth pnginfo" extension and by NovelAI (which uses the
``stealth_pngcomp`` form for its JSON metadata). The layout, as those tools write and
sd-parsers / sd-prompt-reader read it:

- pixels are visited **column by column** (x outer, y inner: ``(0,0), (0,1), ... (0,H-1), (1,0) ...``);
- ``alpha`` mode takes one bit per pixel, the LSB of the alpha byte; ``rgb`` mode takes three, the
  LSBs of R, G then B;
- the bit stream (most significant bit of each byte first) is a 15-byte magic --
  ``stealth_pnginfo`` / ``stealth_pngcomp`` (alpha) or ``stealth_rgbinfo`` / ``stealth_rgbcomp``
  (rgb), ``comp`` meaning gzip -- then a 32-bit big-endian length *in bits*, then the payload
  (UTF-8 text, or a gzip member of it).

Cost. For an 8-bit, non-interlaced RGB/RGBA PNG at least 120 pixels tall the magic lies in the first
column, and the first column of a PNG can be un-filtered without its neighbours (the left neighbour
is zero), so :func:`probe` inflates only the first 40-120 rows and touches one pixel per row: tens
of microseconds, no full decode. Only when a magic is found, and for images this fast path does not
cover (WebP, interlaced or 16-bit PNG, images under 120 rows), are the pixels decoded with Pillow.

Hostile input: the length is checked against what the image can hold and against
:data:`MAX_PAYLOAD_BYTES`; gzip output is capped at :data:`MAX_TEXT_BYTES` (a bomb stops there).
Problems are returned as a code and a sentence; nothing here raises on bad data.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from provguard.detectors.containers import PixelFacts

MAGICS = {b"stealth_pnginfo": ("alpha", False), b"stealth_pngcomp": ("alpha", True),
          b"stealth_rgbinfo": ("rgb", False), b"stealth_rgbcomp": ("rgb", True)}
MAGIC_BITS = 15 * 8
HEADER_BITS = MAGIC_BITS + 32
MAX_PAYLOAD_BYTES = 16 << 20  # stored payload bytes we are willing to read out of the pixels
MAX_TEXT_BYTES = 1 << 20      # decompressed bytes kept (gzip bombs stop here)
MAX_DECODE_PIXELS = 40_000_000  # larger images are not decoded for the stealth check (about 160 MB RGBA)
_BPP = {2: 3, 6: 4}           # PNG colour type -> bytes per pixel at bit depth 8


@dataclass
class StealthResult:
    """What the pixels hold. ``text`` is ``None`` when ``problem`` says why it could not be read.

    ``magic``: the 15-byte signature found; ``mode``: ``"alpha"`` or ``"rgb"``; ``compressed``: gzip;
    ``payload_bits``: the declared length; ``problem``/``message``: a short code and a sentence.
    """

    magic: str
    mode: str
    compressed: bool
    payload_bits: int
    text: str | None = None
    problem: str | None = None
    message: str | None = None


def probe(data: bytes, px: PixelFacts) -> list[bytes] | None:
    """Magics found in the first PNG column without decoding the image; ``None`` if the fast path cannot apply.

    Applies to non-interlaced 8-bit RGB (colour type 2) and RGBA (6) PNGs at least 120 rows tall. Rows
    are inflated in stages (3, 8, 40, 120 for RGBA; 3, 40 for RGB) and the probe stops as soon as no magic
    can still match, so a file without stealth data costs the inflation of a few rows.
    """
    bpp = _BPP.get(px.png_color_type)
    if bpp is None or px.png_bit_depth != 8 or px.png_interlace or px.height < MAGIC_BITS or not px.idat:
        return None
    modes = ("alpha", "rgb") if bpp == 4 else ("rgb",)
    stride = 1 + px.width * bpp
    rows = _ColumnReader(data, px.idat, stride, bpp)
    for n in ((3, 8, 40, MAGIC_BITS) if bpp == 4 else (3, MAGIC_BITS // 3)):
        col = rows.first_column(n)
        if col is None:
            return None
        bits = {m: _column_bits(col, bpp, m) for m in modes}
        alive = [m for m in modes if _could_match(bits[m], m)]
        if not alive:
            return []
    return [magic for m in alive for magic in _full_matches(bits[m], m)]


class _ColumnReader:
    """Inflates a PNG's IDAT stream row by row and un-filters only the first pixel of each row.

    Column 0 needs no left neighbour (it is zero by the PNG spec), so Sub is the identity, Up and Paeth
    (with a = c = 0 Paeth picks b) add the pixel above, and Average adds half of it.
    """

    def __init__(self, data: bytes, idat: list[tuple[int, int]], stride: int, bpp: int):
        self.data, self.chunks, self.stride, self.bpp = data, iter(idat), stride, bpp
        self.z, self.raw, self.tail = zlib.decompressobj(), bytearray(), b""
        self.column, self.prev = bytearray(), bytes(bpp)

    def first_column(self, rows: int) -> bytes | None:
        """Column-0 pixels of the first ``rows`` rows (``rows * bpp`` bytes), ``None`` if the stream is corrupt or short."""
        need = rows * self.stride
        try:
            while len(self.raw) < need:
                if not self.tail:
                    off, length = next(self.chunks, (0, 0))
                    if not length:
                        return None
                    self.tail = memoryview(self.data)[off:off + length]
                self.raw += self.z.decompress(self.tail, need - len(self.raw))
                self.tail = self.z.unconsumed_tail
        except zlib.error:
            return None
        for r in range(len(self.column) // self.bpp, rows):
            f, start = self.raw[r * self.stride], r * self.stride + 1
            cur = bytes(self.raw[start:start + self.bpp])
            if f in (2, 4):
                cur = bytes((x + b) & 0xFF for x, b in zip(cur, self.prev))
            elif f == 3:
                cur = bytes((x + (b >> 1)) & 0xFF for x, b in zip(cur, self.prev))
            self.column += cur
            self.prev = cur
        return bytes(self.column)


# magic -> its bits as a "0101..." string (cheaper than arrays for a 120-bit comparison)
_MAGIC_BITS = {m: "".join(f"{b:08b}" for b in m) for m in MAGICS}


def _column_bits(col: bytes, bpp: int, mode: str) -> str:
    """The LSB stream of column-0 pixels in ``mode``, as a "0101..." string."""
    if mode == "alpha":
        return "".join("1" if v & 1 else "0" for v in col[3::bpp])
    return "".join("1" if v & 1 else "0" for i, v in enumerate(col) if i % bpp < 3)


def _could_match(bits: str, mode: str) -> bool:
    bits = bits[:MAGIC_BITS]
    return any(MAGICS[m][0] == mode and b.startswith(bits) for m, b in _MAGIC_BITS.items())


def _full_matches(bits: str, mode: str) -> list[bytes]:
    return [m for m, b in _MAGIC_BITS.items() if MAGICS[m][0] == mode and bits[:MAGIC_BITS] == b]


def decode_rgba(data: bytes) -> np.ndarray | None:
    """``uint8`` ``(H, W, 3|4)`` pixels via Pillow (RGB or RGBA images only), ``None`` otherwise or on error."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode not in ("RGB", "RGBA"):
                return None
            return np.asarray(im)
    except Exception:  # Pillow raises many types on broken pixel data; the caller reports "no stealth data read"
        return None


def read(pixels: np.ndarray) -> StealthResult | None:
    """Read stealth metadata from ``uint8`` ``(H, W, 3|4)`` pixels; ``None`` when no magic is present.

    The RGB magic is looked for first (it completes after 40 pixels, the alpha one after 120), as the
    extension's own reader does.
    """
    h, w, ch = pixels.shape
    modes = ["rgb"] + (["alpha"] if ch == 4 else [])
    for mode in modes:
        head = _bits(pixels, mode, MAGIC_BITS)
        if head is None:
            continue
        magic = np.packbits(head).tobytes()
        if magic in MAGICS and MAGICS[magic][0] == mode:
            return _payload(pixels, magic)
    return None


def _bits(pixels: np.ndarray, mode: str, n: int) -> np.ndarray | None:
    """The first ``n`` bits of the stream in ``mode`` (``None`` if the image holds fewer)."""
    h, w, _ = pixels.shape
    per_pixel = 1 if mode == "alpha" else 3
    if n > h * w * per_pixel:
        return None
    cols = -(-n // (h * per_pixel))
    block = pixels[:, :cols, 3] if mode == "alpha" else pixels[:, :cols, :3]
    stream = block.T.reshape(-1) if mode == "alpha" else block.transpose(1, 0, 2).reshape(-1)
    return stream[:n] & 1


def _payload(pixels: np.ndarray, magic: bytes) -> StealthResult:
    mode, compressed = MAGICS[magic]
    h, w, _ = pixels.shape
    capacity = h * w * (1 if mode == "alpha" else 3) - HEADER_BITS
    header = _bits(pixels, mode, HEADER_BITS)
    nbits = 0 if header is None else struct.unpack(">I", np.packbits(header[MAGIC_BITS:]).tobytes())[0]
    res = StealthResult(magic=magic.decode(), mode=mode, compressed=compressed, payload_bits=nbits)
    if header is None or nbits == 0 or nbits % 8 or nbits > capacity or nbits > MAX_PAYLOAD_BYTES * 8:
        res.problem = "stealth:impossible-length"
        res.message = (f"stealth header declares {nbits} payload bits; the image holds {max(capacity, 0)} after the "
                       f"header and a payload must be a whole number of bytes up to {MAX_PAYLOAD_BYTES} bytes")
        return res
    blob = np.packbits(_bits(pixels, mode, HEADER_BITS + nbits)[HEADER_BITS:]).tobytes()
    if not compressed:
        if len(blob) > MAX_TEXT_BYTES:
            res.problem, res.message = "stealth:oversized", f"stealth text of {len(blob)} bytes cut at {MAX_TEXT_BYTES}"
            blob = blob[:MAX_TEXT_BYTES]
        res.text = blob.decode("utf-8", errors="replace")
        return res
    return _gunzip(blob, res)


def _gunzip(blob: bytes, res: StealthResult) -> StealthResult:
    """Inflate a gzip member, keeping at most :data:`MAX_TEXT_BYTES` (a bomb is cut there and reported)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(blob, MAX_TEXT_BYTES + 1)
    except zlib.error as exc:
        res.problem, res.message = "stealth:bad-gzip", f"stealth payload is not valid gzip ({exc})"
        return res
    if len(out) > MAX_TEXT_BYTES:
        res.problem = "stealth:gzip-bomb"
        res.message = (f"stealth gzip payload of {len(blob)} bytes inflates past {MAX_TEXT_BYTES} bytes; "
                       f"only the first {MAX_TEXT_BYTES} were kept")
        out = out[:MAX_TEXT_BYTES]
    elif not d.eof:
        res.problem, res.message = "stealth:bad-gzip", "stealth gzip payload ends before its end-of-stream marker"
    res.text = out.decode("utf-8", errors="replace")
    return res
