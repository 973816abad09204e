"""Metadata provenance: what a file's own metadata says about where it came from.

Two stages. (1) A fast scan of every file (:mod:`provguard.detectors.containers` + Pillow's EXIF
parser; no pixels decoded): IPTC/XMP ``DigitalSourceType``, generator text chunks (AUTOMATIC1111, ComfyUI, InvokeAI, NovelAI, Midjourney),
EXIF ``UserComment``/``Software``, IPTC ``Credit``. (2) c2pa-python, only for files that carry a C2PA
store. Reason codes (family = tier):

=================================================  =========  ======================================
reason                                              verdict    strength
=================================================  =========  ======================================
``c2pa:trusted:<digitalSourceType>`` (AI type)      synthetic  strong  (signed by a trusted anchor)
``c2pa:trusted:<digitalSourceType>`` (capture)      real       strong
``c2pa:untrusted:<digitalSourceType>``              synthetic  medium  (valid signature, unknown signer)
``c2pa:invalid`` / ``c2pa:unreadable``              none       weak    (tampered or broken; reported)
``xmp:digitalsourcetype:<type>`` (AI type)          synthetic  medium  (unsigned)
``png-text:<generator>`` / ``exif:<generator>``     synthetic  medium  (automatic1111, comfyui, invokeai,
``xmp:<generator>`` / ``iptc:<generator>``                             novelai, midjourney, google)
``metadata:corrupt:<what>`` / ``metadata:oversized``  none     weak    (audit only)
=================================================  =========  ======================================

No metadata means no evidence at all: absence is never "real" (scrapers strip metadata).
Not covered: NovelAI's "stealth" alpha-LSB payload (needs pixels), BMFF/HEIF/AVIF containers.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Sequence

from provguard.detectors.containers import Containers, read_containers
from provguard.detectors.evidence import (MEDIUM, NONE, REAL, STRONG, SYNTHETIC, TIER_SIGNED, TIER_UNSIGNED,
                                          WEAK, Evidence, Item)

IPTC_NS = "http://cv.iptc.org/newscodes/digitalsourcetype/"
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                             "algorithmicMedia", "compositeSynthetic"})
CAPTURE_SOURCE_TYPES = frozenset({"digitalCapture", "negativeFilm", "positiveFilm", "print"})
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_DST = re.compile(rb"DigitalSourceType\s*(?:=\s*[\"']|>\s*(?:<rdf:li[^>]*>)?)\s*([^\"'<\s]+)")
_A1111 = re.compile(r"Steps:\s*\d+.*(Sampler|CFG scale|Seed):", re.S)
MAX_SCAN = 1 << 20  # bytes of an XMP packet searched for signals


def _ev(detector: str, verdict: str, reason: str, strength: str, tier: str = TIER_UNSIGNED, **detail) -> Evidence:
    return Evidence(detector=detector, verdict=verdict, score=1.0 if verdict == SYNTHETIC else 0.0, p_value=None,
                    reason=reason, strength=strength, tier=tier, detail=detail)


def _short(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


# -- unsigned signals ---------------------------------------------------------------------------
def _json_obj(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


def generator_from_text(text: dict[str, str]) -> list[tuple[str, str]]:
    """``[(generator, key)]`` recognised in PNG-style text fields (keys as written by each tool)."""
    found = []
    if _A1111.search(text.get("parameters", "")[:65536]):
        found.append(("automatic1111", "parameters"))
    for key in ("prompt", "workflow"):
        if key in text and _json_obj(text[key]):
            found.append(("comfyui", key))
            break
    for key in ("invokeai_metadata", "sd-metadata", "Dream"):
        if key in text:
            found.append(("invokeai", key))
            break
    if text.get("Software", "").strip().startswith("NovelAI") or text.get("Source", "").startswith("NovelAI"):
        found.append(("novelai", "Software"))
    if "Job ID:" in text.get("Description", "") or "Job ID:" in text.get("Comment", "")[:65536]:
        found.append(("midjourney", "Description"))
    if text.get("Credit", "").strip() == "Made with Google AI":
        found.append(("google", "Credit"))
    return found


def _exif_fields(blob: bytes) -> dict[str, str]:
    """``UserComment``, ``Software``, ``ImageDescription`` from an EXIF block, via Pillow."""
    from PIL import Image

    exif = Image.Exif()
    exif.load(blob if blob.startswith((b"II", b"MM")) else blob[6:])  # drop an "Exif\0\0" prefix
    out = {}
    for tag, name in ((0x0131, "Software"), (0x010E, "ImageDescription")):
        if isinstance(exif.get(tag), str):
            out[name] = exif[tag]
    uc = exif.get_ifd(0x8769).get(0x9286)
    if isinstance(uc, bytes):
        head, body = uc[:8], uc[8:]
        if head.startswith(b"UNICODE"):
            # EXIF says UCS-2 in the TIFF byte order, but writers disagree (piexif: always big-endian):
            # for mostly-ASCII text the high bytes are zero, which tells the order.
            big = body[0::2].count(0) > body[1::2].count(0)
            out["UserComment"] = body.decode("utf-16-be" if big else "utf-16-le", errors="replace")
        else:
            out["UserComment"] = body.decode("utf-8", errors="replace")
    elif isinstance(uc, str):
        out["UserComment"] = uc
    return out


def _xmp_signals(packet: bytes) -> list[Evidence]:
    out = []
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:  # never expand entities from a file
        out.append(_ev("xmp", NONE, "metadata:corrupt:xmp-doctype", WEAK))
    else:
        import xml.etree.ElementTree as ET

        body = packet.strip(b"\x00 \r\n\t")
        start, end = body.find(b"<x:xmpmeta"), body.rfind(b"</x:xmpmeta>")
        try:
            ET.fromstring(body[start:end + 12] if start >= 0 and end > start else body)
        except ET.ParseError as exc:
            out.append(_ev("xmp", NONE, "metadata:corrupt:xmp", WEAK, error=str(exc)))
    for m in _DST.finditer(packet[:MAX_SCAN]):
        kind = _short(m.group(1).decode("utf-8", "replace"))
        verdict = SYNTHETIC if kind in AI_SOURCE_TYPES else NONE
        out.append(_ev("xmp", verdict, f"xmp:digitalsourcetype:{kind}", MEDIUM if verdict == SYNTHETIC else WEAK,
                       value=m.group(1).decode("utf-8", "replace")))
    if b"DigImageGUID" in packet:
        out.append(_ev("xmp", SYNTHETIC, "xmp:midjourney", MEDIUM, key="DigImageGUID"))
    if re.search(rb"Credit\s*(?:=\s*[\"']|>(?:\s*<[^>]+>)*\s*)Made with Google AI", packet[:MAX_SCAN]):
        out.append(_ev("xmp", SYNTHETIC, "xmp:google", MEDIUM, key="photoshop:Credit"))
    return out


def unsigned_evidence(c: Containers) -> list[Evidence]:
    """Evidence from everything except C2PA (pure parsing, no pixels)."""
    out = [_ev("png-text", SYNTHETIC, f"png-text:{gen}", MEDIUM, key=key) for gen, key in generator_from_text(c.text)]
    for packet in c.xmp:
        out += _xmp_signals(packet)
    if c.exif:
        try:
            fields = _exif_fields(c.exif)
        except Exception as exc:  # Pillow raises many types on corrupt EXIF; it is evidence of nothing
            out.append(_ev("exif", NONE, "metadata:corrupt:exif", WEAK, error=f"{type(exc).__name__}: {exc}"))
        else:
            text = {"parameters": fields.get("UserComment", ""), "Software": fields.get("Software", ""),
                    "Description": fields.get("ImageDescription", "")}
            out += [_ev("exif", SYNTHETIC, f"exif:{gen}", MEDIUM, key={"parameters": "UserComment"}.get(key, key))
                    for gen, key in generator_from_text(text)]
    credit = c.iptc.get((2, 110), b"").decode("utf-8", "replace").strip()
    if credit == "Made with Google AI":
        out.append(_ev("iptc", SYNTHETIC, "iptc:google", MEDIUM, key="Credit"))
    out += [_ev("metadata", NONE, f"metadata:corrupt:{p}", WEAK) for p in c.problems]
    if c.oversized:
        out.append(_ev("metadata", NONE, "metadata:oversized", WEAK, keys=c.oversized[:10]))
    return out


# -- C2PA ---------------------------------------------------------------------------------------
def _source_types(manifest: dict) -> list[str]:
    types = []
    for a in manifest.get("assertions") or []:
        if isinstance(a, dict) and str(a.get("label", "")).startswith("c2pa.actions"):
            for act in (a.get("data") or {}).get("actions") or []:
                if isinstance(act, dict) and act.get("digitalSourceType"):
                    types.append(_short(str(act["digitalSourceType"])))
    return types


def c2pa_evidence(data: bytes, fmt: str, trust_anchors: str | None = None) -> list[Evidence]:
    """Read and validate the C2PA store with c2pa-python; ``trust_anchors`` is PEM text of trusted roots."""
    import c2pa

    try:
        ctx = None
        if trust_anchors:
            ctx = c2pa.Context(settings=c2pa.Settings.from_dict({"trust": {"trust_anchors": trust_anchors}}))
        reader = c2pa.Reader(_MIME[fmt], io.BytesIO(data), context=ctx)
        state = reader.get_validation_state()
        store = json.loads(reader.json())
    except Exception as exc:  # c2pa.C2paError and friends: broken JUMBF, unsupported store
        return [_ev("c2pa", NONE, "c2pa:unreadable", WEAK, TIER_SIGNED, error=f"{type(exc).__name__}: {exc}")]
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest") or "", {})
    types = _source_types(manifest)
    signer = (manifest.get("signature_info") or {})
    detail = {"validation_state": state, "digital_source_types": types, "signer": signer.get("common_name"),
              "issuer": signer.get("issuer"), "claim_generator": manifest.get("claim_generator_info")}
    if state == "Invalid":
        failures = ((store.get("validation_results") or {}).get("activeManifest") or {}).get("failure") or []
        detail["failures"] = [f.get("code") for f in failures if isinstance(f, dict)]
        return [_ev("c2pa", NONE, "c2pa:invalid", WEAK, TIER_SIGNED, **detail)]
    trusted = state == "Trusted"
    level = "trusted" if trusted else "untrusted"
    if not types:
        return [_ev("c2pa", NONE, f"c2pa:{level}:no-source-type", WEAK, TIER_SIGNED, **detail)]
    ai = [t for t in types if t in AI_SOURCE_TYPES]
    if ai:
        return [_ev("c2pa", SYNTHETIC, f"c2pa:{level}:{ai[0]}", STRONG if trusted else MEDIUM, TIER_SIGNED, **detail)]
    real = trusted and all(t in CAPTURE_SOURCE_TYPES for t in types)
    return [_ev("c2pa", REAL if real else NONE, f"c2pa:{level}:{types[0]}", STRONG if real else WEAK, TIER_SIGNED, **detail)]


def scan_metadata(data: bytes, trust_anchors: str | None = None) -> list[Evidence]:
    """All metadata evidence for one file's bytes (empty list = the metadata has no opinion)."""
    c = read_containers(data)
    out = c2pa_evidence(data, c.format, trust_anchors) if c.c2pa_store else []
    return out + unsigned_evidence(c)


class MetadataDetector:
    """:class:`~provguard.detectors.evidence.Detector` over file bytes; ``trust_anchors``: PEM file path."""

    name, tier, cost = "metadata", TIER_SIGNED, 1e-4

    def __init__(self, trust_anchors: str | Path | None = None):
        self.trust_anchors = Path(trust_anchors).read_text() if trust_anchors else None

    def score_batch(self, items: Sequence[Item]) -> list[list[Evidence]]:
        out = []
        for it in items:
            try:
                out.append(scan_metadata(it.data, self.trust_anchors) if it.data is not None else [])
            except OSError as exc:
                out.append([_ev("metadata", NONE, "metadata:error", WEAK, error=str(exc))])
        return out
