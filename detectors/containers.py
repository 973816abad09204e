"""Find the metadata inside PNG, JPEG, WebP and HEIF/AVIF bytes without decoding pixels.

Walks the container structure (PNG chunks, JPEG marker segments up to the first scan, RIFF chunks,
ISO-BMFF top-level boxes) and collects text chunks, XMP packets, EXIF, IPTC-IIM, whether a C2PA
store (JUMBF) is present, and the few header facts the pixel-level stealth check needs (size, alpha,
lossless, where the PNG image data lies). Costs microseconds: no pixel data is touched. Corruption
(a truncated chunk, a bad length, a compressed chunk that will not inflate) is recorded in
``problems`` and the walk stops or skips; it never raises. Text is capped at :data:`MAX_TEXT`
characters per chunk (decompression is capped too), so a 100 MB ``parameters`` chunk costs no more
than a small one. HEIF/AVIF: only the C2PA ``uuid`` box and XMP packets are found (EXIF sits in an
item located through ``iloc`` and is not read).
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

MAX_TEXT = 1 << 20  # characters kept per text value
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_XMP_JPEG = b"http://ns.adobe.com/xap/1.0/\x00"
_C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")  # the C2PA manifest-store box in ISO-BMFF
_BMFF_BRANDS = {b"avif": "avif", b"avis": "avif", b"heic": "heif", b"heix": "heif", b"heim": "heif",
                b"heis": "heif", b"mif1": "heif", b"msf1": "heif", b"hevc": "heif", b"hevx": "heif"}


@dataclass
class PixelFacts:
    """Header facts about the pixels (no pixel is decoded to get them).

    ``width``/``height`` in pixels (0 when unknown); ``alpha``: the image has an alpha channel;
    ``lossless``: least significant bits survive (PNG, WebP VP8L, WebP lossless alpha);
    ``png_bit_depth``/``png_color_type``/``png_interlace``: from IHDR; ``idat``: ``(offset, length)``
    of each PNG IDAT payload in file order.
    """

    width: int = 0
    height: int = 0
    alpha: bool = False
    lossless: bool = False
    png_bit_depth: int = 0
    png_color_type: int = -1
    png_interlace: int = 0
    idat: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Containers:
    """What a file's container says, before any interpretation.

    ``text``: key -> value (PNG tEXt/zTXt/iTXt; JPEG COM as ``"Comment"``); ``xmp``: raw packets;
    ``exif``: the TIFF-structured EXIF block (for :class:`PIL.Image.Exif`); ``iptc``: IIM dataset
    ``(record, number) -> bytes``; ``c2pa_store``: a JUMBF/C2PA store is present; ``problems``: short
    machine-readable notes on corruption (``"png:truncated-chunk"``, ...); ``oversized``: keys cut at MAX_TEXT;
    ``pixels``: :class:`PixelFacts` from the headers.
    """

    format: str | None = None
    text: dict[str, str] = field(default_factory=dict)
    xmp: list[bytes] = field(default_factory=list)
    exif: bytes | None = None
    iptc: dict[tuple[int, int], bytes] = field(default_factory=dict)
    c2pa_store: bool = False
    problems: list[str] = field(default_factory=list)
    oversized: list[str] = field(default_factory=list)
    pixels: PixelFacts = field(default_factory=PixelFacts)


def sniff(data: bytes) -> str | None:
    """``"png"``, ``"jpeg"``, ``"webp"``, ``"heif"``, ``"avif"`` from the magic bytes, else ``None``."""
    if data.startswith(_PNG_SIG):
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and len(data) >= 16:
        size = struct.unpack(">I", data[:4])[0]
        brands = [data[8:12]] + [data[i:i + 4] for i in range(16, min(size, len(data), 64), 4)]
        for b in brands:
            if b in _BMFF_BRANDS:
                return _BMFF_BRANDS[b]
    return None


def read_containers(data: bytes) -> Containers:
    """Parse ``data`` (a whole file) into :class:`Containers`; unknown formats give an empty result."""
    c = Containers(format=sniff(data))
    walker = {"png": _png, "jpeg": _jpeg, "webp": _webp, "heif": _bmff, "avif": _bmff}.get(c.format)
    if walker is not None:
        walker(data, c)
    return c


def _inflate(blob: bytes, c: Containers, key: str) -> bytes | None:
    try:
        d = zlib.decompressobj()
        out = d.decompress(blob, MAX_TEXT * 4)
        if d.unconsumed_tail and key not in c.oversized:
            c.oversized.append(key)
        return out
    except zlib.error:
        c.problems.append(f"png:bad-compressed-text:{key[:40]}")
        return None


def _keep_text(c: Containers, key: str, raw: bytes, encoding: str) -> None:
    text = raw.decode(encoding, errors="replace")
    if len(text) > MAX_TEXT:
        if key not in c.oversized:
            c.oversized.append(key)
        text = text[:MAX_TEXT]
    if key == "XML:com.adobe.xmp":
        c.xmp.append(text.encode("utf-8"))
    else:
        c.text[key] = text


def _png_text(ctype: bytes, payload: bytes, c: Containers) -> None:
    key, sep, rest = payload.partition(b"\x00")
    if not sep:
        c.problems.append(f"png:malformed-{ctype.decode()}")
        return
    name = key.decode("latin-1", errors="replace")
    if ctype == b"tEXt":
        _keep_text(c, name, rest, "latin-1")
    elif ctype == b"zTXt":
        raw = _inflate(rest[1:], c, name)
        if raw is not None:
            _keep_text(c, name, raw, "latin-1")
    else:  # iTXt: flag, method, language\0, translated keyword\0, text
        if len(rest) < 2:
            c.problems.append("png:malformed-iTXt")
            return
        flag, tail = rest[0], rest[2:]
        parts = tail.split(b"\x00", 2)
        if len(parts) < 3:
            c.problems.append("png:malformed-iTXt")
            return
        raw = _inflate(parts[2], c, name) if flag else parts[2]
        if raw is not None:
            _keep_text(c, name, raw, "utf-8")


def _png(data: bytes, c: Containers) -> None:
    pos = len(_PNG_SIG)
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            c.problems.append("png:truncated-chunk")
            return
        if ctype == b"IDAT":  # pixel data: remember where it is, never copy it
            c.pixels.idat.append((pos + 8, length))
        elif ctype in (b"tEXt", b"zTXt", b"iTXt"):
            _png_text(ctype, data[pos + 8:end], c)
        elif ctype == b"IHDR" and length >= 13:
            _png_header(data[pos + 8:end], c.pixels)
        elif ctype == b"tRNS":
            c.pixels.alpha = True
        elif ctype == b"eXIf":
            c.exif = data[pos + 8:end]
        elif ctype == b"caBX":
            c.c2pa_store = True
        elif ctype == b"IEND":
            return
        pos = end + 4  # skip CRC
    c.problems.append("png:no-IEND")


def _png_header(ihdr: bytes, px: PixelFacts) -> None:
    px.width, px.height, px.png_bit_depth, px.png_color_type, _, _, px.png_interlace = struct.unpack(">IIBBBBB", ihdr[:13])
    px.alpha = px.alpha or px.png_color_type in (4, 6)
    px.lossless = True


def _jpeg(data: bytes, c: Containers) -> None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            c.problems.append("jpeg:bad-marker")
            return
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: metadata is all before this
            return
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        seg = data[pos + 4:pos + 2 + length]
        if length < 2 or pos + 2 + length > len(data):
            c.problems.append("jpeg:truncated-segment")
            return
        if marker == 0xE1 and seg.startswith(b"Exif\x00\x00"):
            c.exif = seg[6:]
        elif marker == 0xE1 and seg.startswith(_XMP_JPEG):
            c.xmp.append(seg[len(_XMP_JPEG):])
        elif marker == 0xEB and seg[:2] == b"JP":  # APP11 JUMBF (C2PA)
            c.c2pa_store = True
        elif marker == 0xED and seg.startswith(b"Photoshop 3.0\x00"):
            _photoshop_irb(seg[14:], c)
        elif marker == 0xFE:
            _keep_text(c, "Comment", seg, "utf-8")
        pos += 2 + length


def _photoshop_irb(blob: bytes, c: Containers) -> None:
    """Photoshop image resources (``8BIM`` blocks); resource 0x0404 holds IPTC-IIM datasets."""
    pos = 0
    while pos + 12 <= len(blob) and blob[pos:pos + 4] == b"8BIM":
        rid = struct.unpack(">H", blob[pos + 4:pos + 6])[0]
        nlen = blob[pos + 6]
        pos += 6 + 1 + nlen + ((1 + nlen) % 2)
        if pos + 4 > len(blob):
            c.problems.append("iptc:truncated-resource")
            return
        size = struct.unpack(">I", blob[pos:pos + 4])[0]
        if pos + 4 + size > len(blob):
            c.problems.append("iptc:truncated-resource")
            size = len(blob) - pos - 4
        if rid == 0x0404:
            _iim(blob[pos + 4:pos + 4 + size], c)
        pos += 4 + size + (size % 2)


def _iim(blob: bytes, c: Containers) -> None:
    """IIM datasets ``0x1C record number size value``; the extended (>32767 byte) size form is refused."""
    pos = 0
    while pos + 5 <= len(blob) and blob[pos] == 0x1C:
        record, number, size = blob[pos + 1], blob[pos + 2], struct.unpack(">H", blob[pos + 3:pos + 5])[0]
        if size & 0x8000:  # extended dataset: the next (size & 0x7FFF) bytes hold the length; no text is that big
            c.problems.append("iptc:extended-dataset")
            return
        if pos + 5 + size > len(blob):
            c.problems.append("iptc:truncated-dataset")
        value = blob[pos + 5:pos + 5 + size]
        c.iptc[(record, number)] = c.iptc[(record, number)] + b"\x00" + value if (record, number) in c.iptc else value
        pos += 5 + size


def _webp(data: bytes, c: Containers) -> None:
    pos = 12
    while pos + 8 <= len(data):
        ctype, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if pos + 8 + size > len(data):
            c.problems.append("webp:truncated-chunk")
            return
        body = data[pos + 8:pos + 8 + size]
        if ctype == b"EXIF":
            c.exif = body[6:] if body.startswith(b"Exif\x00\x00") else body
        elif ctype == b"XMP ":
            c.xmp.append(body)
        elif ctype == b"C2PA":
            c.c2pa_store = True
        else:
            _webp_pixels(ctype, body, c.pixels)
        pos += 8 + size + (size % 2)


def _webp_pixels(ctype: bytes, body: bytes, px: PixelFacts) -> None:
    """Size, alpha and losslessness from VP8X / VP8L / ALPH / VP8 headers."""
    if ctype == b"VP8X" and len(body) >= 10:
        px.alpha = px.alpha or bool(body[0] & 0x10)
        px.width = 1 + int.from_bytes(body[4:7], "little")
        px.height = 1 + int.from_bytes(body[7:10], "little")
    elif ctype == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        px.width, px.height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        px.alpha = px.alpha or bool((bits >> 28) & 1)
        px.lossless = True
    elif ctype == b"ALPH" and body:
        px.alpha = True
        px.lossless = px.lossless or (body[0] & 0x03) == 1  # alpha plane compressed losslessly: its LSBs survive
    elif ctype == b"VP8 " and len(body) >= 10 and not px.width:
        px.width = int.from_bytes(body[6:8], "little") & 0x3FFF
        px.height = int.from_bytes(body[8:10], "little") & 0x3FFF


def _bmff(data: bytes, c: Containers) -> None:
    """ISO-BMFF (HEIF/AVIF) top-level boxes: the C2PA ``uuid`` box; XMP packets found by their header."""
    pos = 0
    while pos + 8 <= len(data):
        size, btype = struct.unpack(">I4s", data[pos:pos + 8])
        head = 8
        if size == 1:
            if pos + 16 > len(data):
                c.problems.append("bmff:truncated-box")
                return
            size, head = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = len(data) - pos
        if size < head or pos + size > len(data):
            c.problems.append("bmff:truncated-box")
            return
        if btype == b"uuid" and data[pos + head:pos + head + 16] == _C2PA_UUID:
            c.c2pa_store = True
        pos += size
    start = data.find(b"<x:xmpmeta")
    if start >= 0:
        end = data.find(b"</x:xmpmeta>", start)
        c.xmp.append(data[start:end + 12] if end > 0 else data[start:start + MAX_TEXT])


_PROBLEM_TEXT = {
    "png:truncated-chunk": "a PNG chunk runs past the end of the file (truncated download?); chunks after it were not read",
    "png:no-IEND": "the PNG has no IEND chunk (the file is cut short)",
    "png:malformed-tEXt": "a PNG tEXt chunk has no keyword separator",
    "png:malformed-zTXt": "a PNG zTXt chunk has no keyword separator",
    "png:malformed-iTXt": "a PNG iTXt chunk is missing its header fields",
    "png:bad-compressed-text": "a compressed PNG text chunk does not inflate",
    "jpeg:bad-marker": "a JPEG segment does not start with a marker; later segments were not read",
    "jpeg:truncated-segment": "a JPEG segment declares more bytes than the file holds; later segments were not read",
    "webp:truncated-chunk": "a WebP chunk declares more bytes than the file holds",
    "bmff:truncated-box": "an ISO-BMFF (HEIF/AVIF) box declares more bytes than the file holds",
    "iptc:truncated-resource": "a Photoshop image resource (APP13) is cut short",
    "iptc:truncated-dataset": "an IPTC-IIM dataset declares more bytes than its record holds",
    "iptc:extended-dataset": "an IPTC-IIM dataset uses the extended (over 32 KB) length form; the record was not read further",
}


def describe_problem(code: str) -> str:
    """One sentence for a problem code from :attr:`Containers.problems` (codes may carry a ``:key`` suffix)."""
    base = code if code in _PROBLEM_TEXT else code.rsplit(":", 1)[0]
    text = _PROBLEM_TEXT.get(base, f"corrupt metadata ({code})")
    return text + (f" (key {code[len(base) + 1:]!r})" if base != code else "")
