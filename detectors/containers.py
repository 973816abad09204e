"""Find the metadata inside PNG, JPEG and WebP bytes without decoding pixels.

Walks the container structure (PNG chunks, JPEG marker segments up to the first scan, RIFF chunks)
and collects text chunks, XMP packets, EXIF, IPTC-IIM and whether a C2PA store (JUMBF) is present.
Costs microseconds: no pixel data is touched. Corruption (a truncated chunk, a bad length, a
compressed chunk that will not inflate) is recorded in ``problems`` and the walk stops or skips;
it never raises. Text is capped at :data:`MAX_TEXT` characters per chunk (decompression is capped
too), so a 100 MB ``parameters`` chunk costs no more than a small one.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

MAX_TEXT = 1 << 20  # characters kept per text value
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_XMP_JPEG = b"http://ns.adobe.com/xap/1.0/\x00"


@dataclass
class Containers:
    """What a file's container says, before any interpretation.

    ``text``: key -> value (PNG tEXt/zTXt/iTXt; JPEG COM as ``"Comment"``); ``xmp``: raw packets;
    ``exif``: the TIFF-structured EXIF block (for :class:`PIL.Image.Exif`); ``iptc``: IIM dataset
    ``(record, number) -> bytes``; ``c2pa_store``: a JUMBF/C2PA store is present; ``problems``: short
    machine-readable notes on corruption (``"png:truncated-chunk"``, ...); ``oversized``: keys cut at MAX_TEXT.
    """

    format: str | None = None
    text: dict[str, str] = field(default_factory=dict)
    xmp: list[bytes] = field(default_factory=list)
    exif: bytes | None = None
    iptc: dict[tuple[int, int], bytes] = field(default_factory=dict)
    c2pa_store: bool = False
    problems: list[str] = field(default_factory=list)
    oversized: list[str] = field(default_factory=list)


def sniff(data: bytes) -> str | None:
    if data.startswith(_PNG_SIG):
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def read_containers(data: bytes) -> Containers:
    """Parse ``data`` (a whole file) into :class:`Containers`; unknown formats give an empty result."""
    c = Containers(format=sniff(data))
    {"png": _png, "jpeg": _jpeg, "webp": _webp}.get(c.format, lambda d, c: None)(data, c)
    return c


def _inflate(blob: bytes, c: Containers, key: str) -> bytes | None:
    try:
        d = zlib.decompressobj()
        out = d.decompress(blob, MAX_TEXT * 4)
        if d.unconsumed_tail:
            c.oversized.append(key)
        return out
    except zlib.error:
        c.problems.append(f"png:bad-compressed-text:{key[:40]}")
        return None


def _keep_text(c: Containers, key: str, raw: bytes, encoding: str) -> None:
    text = raw.decode(encoding, errors="replace")
    if len(text) > MAX_TEXT:
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
        payload = data[pos + 8:end]
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            _png_text(ctype, payload, c)
        elif ctype == b"eXIf":
            c.exif = payload
        elif ctype == b"caBX":
            c.c2pa_store = True
        elif ctype == b"IEND":
            return
        pos = end + 4  # skip CRC
    c.problems.append("png:no-IEND")


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
    """Photoshop image resources; resource 0x0404 holds IPTC-IIM datasets."""
    pos = 0
    while pos + 12 <= len(blob) and blob[pos:pos + 4] == b"8BIM":
        rid = struct.unpack(">H", blob[pos + 4:pos + 6])[0]
        nlen = blob[pos + 6]
        pos += 6 + 1 + nlen + ((1 + nlen) % 2)
        if pos + 4 > len(blob):
            break
        size = struct.unpack(">I", blob[pos:pos + 4])[0]
        body = blob[pos + 4:pos + 4 + size]
        if rid == 0x0404:
            _iim(body, c)
        pos += 4 + size + (size % 2)


def _iim(blob: bytes, c: Containers) -> None:
    pos = 0
    while pos + 5 <= len(blob) and blob[pos] == 0x1C:
        record, number, size = blob[pos + 1], blob[pos + 2], struct.unpack(">H", blob[pos + 3:pos + 5])[0]
        c.iptc[(record, number)] = blob[pos + 5:pos + 5 + min(size, MAX_TEXT)]
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
        pos += 8 + size + (size % 2)
