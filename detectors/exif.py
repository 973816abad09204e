"""A minimal EXIF (TIFF IFD) reader for the few text tags provenance needs.

Pillow's full EXIF parser costs about a millisecond on a camera photo (it reads every tag of every
IFD); this reads only IFD0's ``ImageDescription``, ``Make``, ``Model``, ``Software``, ``Artist`` and the
``UserComment`` / ``MakerNote`` tags from the Exif sub-IFD (0x8769) or, as Fooocus writes them, from
IFD0, in tens of microseconds. Every offset and count is bounds-checked; a structure that points
outside the block raises :class:`ExifError` with a sentence saying what was wrong.
"""
from __future__ import annotations

import struct

MAX_VALUE = 1 << 20  # bytes kept per value
_IFD0_TAGS = {0x010E: "ImageDescription", 0x010F: "Make", 0x0110: "Model", 0x0131: "Software", 0x013B: "Artist",
              0x9286: "UserComment", 0x927C: "MakerNote"}
_SUB_TAGS = {0x9286: "UserComment", 0x927C: "MakerNote"}
_EXIF_IFD = 0x8769
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}


class ExifError(ValueError):
    """The EXIF block's TIFF structure is broken (the message says how)."""


def read_exif_tags(blob: bytes) -> dict[str, bytes | str]:
    """``name -> value`` for the tags above: ``str`` for ASCII tags, ``bytes`` for UNDEFINED/BYTE ones.

    ``blob`` is a TIFF structure (``II*\\0`` / ``MM\\0*``), optionally after an ``Exif\\0\\0`` prefix.
    Sub-IFD values override IFD0 values of the same name.
    """
    if blob.startswith(b"Exif\x00\x00"):
        blob = blob[6:]
    order = {b"II": "<", b"MM": ">"}.get(blob[:2])
    if order is None or len(blob) < 8 or struct.unpack(order + "H", blob[2:4])[0] != 42:
        raise ExifError("the EXIF block does not start with a TIFF header")
    ifd0 = struct.unpack(order + "I", blob[4:8])[0]
    out, pointer = _read_ifd(blob, order, ifd0, _IFD0_TAGS)
    if pointer is not None:
        sub, _ = _read_ifd(blob, order, pointer, _SUB_TAGS)
        out.update(sub)
    return out


def _read_ifd(blob: bytes, order: str, offset: int, wanted: dict[int, str]) -> tuple[dict[str, bytes | str], int | None]:
    if offset < 8 or offset + 2 > len(blob):
        raise ExifError(f"an EXIF IFD offset ({offset}) points outside the {len(blob)}-byte block")
    count = struct.unpack(order + "H", blob[offset:offset + 2])[0]
    if offset + 2 + 12 * count > len(blob):
        raise ExifError(f"an EXIF IFD declares {count} entries but the block ends before them")
    out, pointer = {}, None
    for i in range(count):
        pos = offset + 2 + 12 * i
        tag, typ, n = struct.unpack(order + "HHI", blob[pos:pos + 8])
        if tag == _EXIF_IFD and typ in (4, 13) and n == 1:
            pointer = struct.unpack(order + "I", blob[pos + 8:pos + 12])[0]
            continue
        name = wanted.get(tag)
        if name is None or typ not in (1, 2, 7):
            continue
        size = n * _TYPE_SIZE[typ]
        if size <= 4:
            raw = blob[pos + 8:pos + 8 + size]
        else:
            start = struct.unpack(order + "I", blob[pos + 8:pos + 12])[0]
            if start + size > len(blob):
                raise ExifError(f"EXIF tag {name} declares {size} bytes past the end of the block")
            raw = blob[start:start + min(size, MAX_VALUE)]
        out[name] = raw.rstrip(b"\x00").decode("utf-8", errors="replace") if typ == 2 else raw
    return out, pointer
