"""Metadata provenance: what a file's own metadata says about where it came from.

Three stages. (1) A fast scan of every file (:mod:`provguard.detectors.containers` +
:mod:`provguard.detectors.exif`; no pixels decoded): IPTC DigitalSourceType in XMP and IPTC-IIM, generator text chunks
(:mod:`provguard.detectors.generators`: AUTOMATIC1111/Forge, Fooocus, Civitai, SwarmUI, ComfyUI,
InvokeAI, NMKD, Easy Diffusion, NovelAI, Midjourney, DALL-E 2, Google), EXIF
``UserComment``/``Software``/``MakerNote``/``Make``/``Model``, XMP (Draw Things, Midjourney,
CreatorTool), IPTC ``Credit``. (2) Stealth metadata in the pixels' least significant bits
(:mod:`provguard.detectors.stealth`), only for lossless PNG/WebP and only where it can be there: files
with an alpha channel, or files where stage 1 found nothing. (3) c2pa-python, only for files that carry
a C2PA store. Reason codes (family = tier):

=================================================  =========  ======================================
reason                                              verdict    strength
=================================================  =========  ======================================
``c2pa:trusted:<digitalSourceType>`` (AI type)      synthetic  strong  (signed by a trusted anchor)
``c2pa:trusted:<digitalSourceType>`` (capture)      real       strong
``c2pa:untrusted:<digitalSourceType>``              synthetic  medium  (valid signature, unknown signer)
``c2pa:invalid`` / ``c2pa:unreadable``              none       weak    (tampered or broken; reported)
``xmp:digitalsourcetype:<type>`` (AI type)          synthetic  medium  (unsigned)
``iptc:digitalsourcetype:<type>`` (AI type)         synthetic  medium  (IIM dataset carrying the code)
``png-text:<generator>`` / ``exif:<generator>``     synthetic  medium  (see generators.py for the list)
``xmp:<generator>`` / ``iptc:<generator>``
``stealth:<generator>``                             synthetic  medium  (LSB payload naming a generator)
``stealth:unrecognized``                            none       weak    (a stealth payload we cannot attribute)
``stealth:not-checked``                             none       weak    (too many pixels to decode for it)
``metadata:corrupt:<what>`` / ``metadata:oversized``  none     weak    (audit only; ``detail.message``)
=================================================  =========  ======================================

No metadata means no evidence at all: absence is never "real" (scrapers strip metadata). Every bad
input (truncated or oversized chunks, malformed XMP/EXIF, an impossible stealth length, a gzip bomb,
a C2PA store that does not parse) becomes weak evidence with a one-sentence ``detail["message"]``;
nothing raises and nothing in the file is executed or expanded.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Sequence

from provguard.detectors import stealth
from provguard.detectors.containers import Containers, describe_problem, read_containers
from provguard.detectors.exif import ExifError, read_exif_tags
from provguard.detectors.evidence import (MEDIUM, NONE, REAL, STRONG, SYNTHETIC, TIER_SIGNED, TIER_UNSIGNED,
                                          WEAK, Evidence, Item)
from provguard.detectors.generators import generator_from_text, json_object, software_generator

__all__ = ["MetadataDetector", "scan_metadata", "unsigned_evidence", "stealth_evidence", "c2pa_evidence",
           "generator_from_text", "AI_SOURCE_TYPES"]

IPTC_NS = "http://cv.iptc.org/newscodes/digitalsourcetype/"
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                             "algorithmicMedia", "compositeSynthetic"})
CAPTURE_SOURCE_TYPES = frozenset({"digitalCapture", "negativeFilm", "positiveFilm", "print"})
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "heif": "image/heif", "avif": "image/avif"}
# the newscode URI anywhere, or a bare code in a DigitalSourceType attribute/element
_DST_URI = re.compile(rb"cv\.iptc\.org/newscodes/digitalsourcetype/([A-Za-z]+)")
_DST_BARE = re.compile(rb"DigitalSourceType\s*(?:=\s*[\"']|>\s*(?:<rdf:li[^>]*>)?)\s*([A-Za-z]+)[\"'<\s]")
_CREATOR_TOOL = re.compile(rb"CreatorTool\s*(?:=\s*[\"']|>\s*)([^\"'<]{1,200})")
_XMP_USERCOMMENT = re.compile(rb"<exif:UserComment>.*?<rdf:li[^>]*>(.*?)</rdf:li>", re.S)
_GOOGLE_CREDIT = re.compile(rb"Credit\s*(?:=\s*[\"']|>(?:\s*<[^>]+>)*\s*)Made with Google AI")
_XML_ESCAPES = (("&quot;", '"'), ("&apos;", "'"), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
MAX_SCAN = 1 << 20  # bytes of an XMP packet searched for signals
_C2PA_VENDORS = tuple((re.compile(p, re.I), v) for p, v in (
    (r"ChatGPT|OpenAI|DALL", "openai"), (r"Firefly", "adobe-firefly"),
    (r"Microsoft|Bing|Designer|Azure", "microsoft"), (r"Google|Gemini|Imagen", "google"), (r"Adobe", "adobe")))


def _ev(detector: str, verdict: str, reason: str, strength: str, tier: str = TIER_UNSIGNED, **detail) -> Evidence:
    return Evidence(detector=detector, verdict=verdict, score=1.0 if verdict == SYNTHETIC else 0.0, p_value=None,
                    reason=reason, strength=strength, tier=tier, detail=detail)


def _short(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


def _dst_evidence(detector: str, kinds: list[str], **detail) -> list[Evidence]:
    """One piece of evidence per distinct IPTC digital source type code."""
    out = []
    for kind in dict.fromkeys(kinds):
        ai = kind in AI_SOURCE_TYPES
        out.append(_ev(detector, SYNTHETIC if ai else NONE, f"{detector}:digitalsourcetype:{kind}", MEDIUM if ai else WEAK,
                       value=IPTC_NS + kind, **detail))
    return out


# -- EXIF ---------------------------------------------------------------------------------------
def _user_comment(raw: bytes | str) -> str:
    """Decode an EXIF UserComment: 8-byte charset prefix (UNICODE / ASCII / JIS / undefined) + body."""
    if isinstance(raw, str):
        return raw
    head, body = raw[:8], raw[8:]
    if head == b"UNICODE\x00":
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            return body.decode("utf-16", errors="replace")
        # EXIF says UCS-2 in the TIFF byte order, but writers disagree (piexif: always big-endian):
        # for mostly-ASCII text the high bytes are zero, which tells the order.
        big = body[0::2].count(0) > body[1::2].count(0)
        return body.decode("utf-16-be" if big else "utf-16-le", errors="replace")
    if head == b"JIS\x00\x00\x00\x00\x00":
        return body.decode("shift_jis", errors="replace")
    if head in (b"ASCII\x00\x00\x00", b"\x00" * 8):
        return body.decode("utf-8", errors="replace").rstrip("\x00")
    return raw.decode("utf-8", errors="replace").rstrip("\x00")  # no prefix at all (e.g. written as a plain string)


def _exif_fields(blob: bytes) -> dict[str, str]:
    """Text fields of an EXIF block (:func:`~provguard.detectors.exif.read_exif_tags`), UserComment decoded."""
    out = {}
    for name, raw in read_exif_tags(blob).items():
        if name == "UserComment":
            out[name] = _user_comment(raw)
        elif name == "MakerNote":
            out[name] = raw if isinstance(raw, str) else raw[:4096].decode("latin-1")
        else:
            out[name] = raw if isinstance(raw, str) else raw.rstrip(b"\x00").decode("utf-8", errors="replace")
    return out


def _exif_as_text(fields: dict[str, str]) -> dict[str, str]:
    """Map EXIF fields onto the names generators write in PNG text chunks."""
    text = {"parameters": fields.get("UserComment", ""), "UserComment": fields.get("UserComment", ""),
            "Software": fields.get("Software", ""), "Description": fields.get("ImageDescription", ""),
            "MakerNote": fields.get("MakerNote", "")}
    if text["MakerNote"] in ("fooocus", "a1111"):
        text["fooocus_scheme"] = text["MakerNote"]
    for name in ("Model", "Make", "ImageDescription", "UserComment"):  # ComfyUI WebP, SwarmUI legacy
        value = fields.get(name, "")
        for key in ("prompt", "workflow"):
            if value.startswith(key + ":{"):
                text[key] = value
        if name == "Model" and "sui_image_params" in value[:4096] and json_object(value):
            text["parameters"] = value
    return text


_EXIF_KEY = {"parameters": "UserComment"}


def _exif_evidence(blob: bytes) -> list[Evidence]:
    try:
        fields = _exif_fields(blob)
    except ExifError as exc:  # a broken EXIF block is evidence of nothing
        return [_ev("exif", NONE, "metadata:corrupt:exif", WEAK, error=str(exc), message=str(exc))]
    return [_ev("exif", SYNTHETIC, f"exif:{gen}", MEDIUM, key=_EXIF_KEY.get(key, key))
            for gen, key in generator_from_text(_exif_as_text(fields))]


# -- XMP and IPTC-IIM ---------------------------------------------------------------------------
def _unescape(b: bytes) -> str:
    s = b.decode("utf-8", "replace")
    for k, v in _XML_ESCAPES:
        s = s.replace(k, v)
    return s


def _xmp_doctype(packet: bytes) -> list[Evidence]:
    """Refuse DOCTYPE/ENTITY outright: never parsed, nothing expanded."""
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        return [_ev("xmp", NONE, "metadata:corrupt:xmp-doctype", WEAK,
                    message="XMP packet declares a DOCTYPE/ENTITY; it was not parsed and nothing was expanded")]
    return []


def _xmp_wellformed(packet: bytes) -> list[Evidence]:
    """Report a packet that does not parse as XML (called only for packets that carry a signal)."""
    import xml.etree.ElementTree as ET

    body = packet.strip(b"\x00 \r\n\t")
    start, end = body.find(b"<x:xmpmeta"), body.rfind(b"</x:xmpmeta>")
    try:
        ET.fromstring(body[start:end + 12] if start >= 0 and end > start else body)
    except ET.ParseError as exc:
        return [_ev("xmp", NONE, "metadata:corrupt:xmp", WEAK, error=str(exc),
                    message=f"XMP packet is not well-formed XML ({exc}); signals were still searched for")]
    return []


def _xmp_signals(packet: bytes) -> list[Evidence]:
    """Signals in one XMP packet, found by pattern (the packet is never expanded).

    Well-formedness is checked (an XML parse: about 30 µs per KB here) only for packets that carry a
    signal, so an ordinary photo's XMP costs a few regex scans; a broken packet that declares AI
    origin is reported as both.
    """
    doctype = _xmp_doctype(packet)
    if doctype:
        return doctype
    out = []
    head = packet[:MAX_SCAN]
    kinds = [m.group(1).decode() for m in _DST_URI.finditer(head)] + [m.group(1).decode() for m in _DST_BARE.finditer(head)]
    out += _dst_evidence("xmp", kinds)
    low = head.lower()
    if b"digimageguid" in low and (b"midjourney" in low or b"job id:" in low):
        out.append(_ev("xmp", SYNTHETIC, "xmp:midjourney", MEDIUM, key="DigImageGUID"))
    elif re.search(rb"Job ID:\s*[0-9a-f]{8}-[0-9a-f]{4}-", head, re.I):
        out.append(_ev("xmp", SYNTHETIC, "xmp:midjourney", MEDIUM, key="Job ID"))
    if _GOOGLE_CREDIT.search(head):
        out.append(_ev("xmp", SYNTHETIC, "xmp:google", MEDIUM, key="photoshop:Credit"))
    tool = _CREATOR_TOOL.search(head)
    gen = software_generator(_unescape(tool.group(1))) if tool else None
    uc = _XMP_USERCOMMENT.search(head)
    dt = json_object(_unescape(uc.group(1))) if uc else None
    if dt is not None and "c" in dt and ("sampler" in dt or "steps" in dt):  # Draw Things' JSON in exif:UserComment
        gen = gen or "drawthings"
    if gen and not any(e.reason == f"xmp:{gen}" for e in out):
        out.append(_ev("xmp", SYNTHETIC, f"xmp:{gen}", MEDIUM, key="CreatorTool" if tool else "exif:UserComment"))
    return _xmp_wellformed(packet) + out if out else out


def _iptc_evidence(c: Containers) -> list[Evidence]:
    """IIM record 2: Credit (2:110), OriginatingProgram (2:65), and the DigitalSourceType newscode in any dataset.

    IIM 4.2 has no DigitalSourceType dataset of its own; writers that want it in IIM put the newscode URI
    in a text dataset, so every record-2 value is searched for it.
    """
    out = []
    kinds = [m.group(1).decode() for (rec, _), v in c.iptc.items() if rec == 2 for m in _DST_URI.finditer(v[:MAX_SCAN])]
    out += _dst_evidence("iptc", kinds)
    if c.iptc.get((2, 110), b"").decode("utf-8", "replace").strip() == "Made with Google AI":
        out.append(_ev("iptc", SYNTHETIC, "iptc:google", MEDIUM, key="Credit"))
    gen = software_generator(c.iptc.get((2, 65), b"").decode("utf-8", "replace"))
    if gen:
        out.append(_ev("iptc", SYNTHETIC, f"iptc:{gen}", MEDIUM, key="OriginatingProgram"))
    return out


def _problem_evidence(c: Containers) -> list[Evidence]:
    out = [_ev("metadata", NONE, f"metadata:corrupt:{p}", WEAK, message=describe_problem(p)) for p in c.problems]
    if c.oversized:
        out.append(_ev("metadata", NONE, "metadata:oversized", WEAK, keys=c.oversized[:10],
                       message=f"text larger than the cap was cut: {', '.join(k[:40] for k in c.oversized[:5])}"))
    return out


def unsigned_evidence(c: Containers) -> list[Evidence]:
    """Evidence from everything except C2PA and the pixels (pure parsing)."""
    out = [_ev("png-text", SYNTHETIC, f"png-text:{gen}", MEDIUM, key=key) for gen, key in generator_from_text(c.text)]
    for packet in c.xmp:
        out += _xmp_signals(packet)
    if c.exif:
        out += _exif_evidence(c.exif)
    return out + _iptc_evidence(c) + _problem_evidence(c)


# -- stealth (pixels) ---------------------------------------------------------------------------
def _stealth_generator(text: str) -> list[tuple[str, str]]:
    obj = json_object(text)
    if obj is not None:  # NovelAI: a JSON object of its PNG text chunks
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in obj.items()}
        return generator_from_text(fields)
    return generator_from_text({"parameters": text})


def stealth_evidence(data: bytes, c: Containers) -> list[Evidence]:
    """Evidence from stealth LSB metadata; reads pixels only when :func:`stealth.probe` cannot rule it out."""
    found = stealth.probe(data, c.pixels) if c.format == "png" else None
    if found == []:
        return []
    size = c.pixels.width * c.pixels.height
    if size > stealth.MAX_DECODE_PIXELS:
        return [_ev("stealth", NONE, "stealth:not-checked", WEAK, pixels=size,
                    message=f"{size} pixels is more than the {stealth.MAX_DECODE_PIXELS} decoded for the stealth check")]
    pixels = stealth.decode_rgba(data)
    res = stealth.read(pixels) if pixels is not None else None
    if res is None:
        return []
    detail = {"magic": res.magic, "mode": res.mode, "compressed": res.compressed, "payload_bits": res.payload_bits}
    out = []
    if res.problem:
        out.append(_ev("stealth", NONE, f"metadata:corrupt:{res.problem}", WEAK, message=res.message, **detail))
    if res.text is None:
        return out
    gens = _stealth_generator(res.text)
    if gens:
        out += [_ev("stealth", SYNTHETIC, f"stealth:{gen}", MEDIUM, key=key, **detail) for gen, key in gens]
    else:
        out.append(_ev("stealth", NONE, "stealth:unrecognized", WEAK, preview=res.text[:200], **detail))
    return out


def _stealth_applies(c: Containers, cheap: list[Evidence]) -> bool:
    """Lossless PNG/WebP as the tools write them (PNG: 8-bit RGB or RGBA), and an alpha channel or nothing
    decisive found so far."""
    px = c.pixels
    if c.format not in ("png", "webp") or not px.lossless:
        return False
    if c.format == "png" and (px.png_bit_depth != 8 or px.png_color_type not in (2, 6)):
        return False
    return c.pixels.alpha or not any(e.verdict == SYNTHETIC for e in cheap)


# -- C2PA ---------------------------------------------------------------------------------------
def _source_types(manifest: dict) -> list[str]:
    types = []
    for a in manifest.get("assertions") or []:
        if isinstance(a, dict) and str(a.get("label", "")).startswith("c2pa.actions"):
            for act in (a.get("data") or {}).get("actions") or []:
                if isinstance(act, dict) and act.get("digitalSourceType"):
                    types.append(_short(str(act["digitalSourceType"])))
    return types


def _claim_vendor(manifest: dict) -> str | None:
    """Who made the claim, from claim_generator(_info) and the actions' softwareAgent."""
    names = [str(manifest.get("claim_generator") or "")]
    names += [str(g.get("name", "")) for g in manifest.get("claim_generator_info") or [] if isinstance(g, dict)]
    for a in manifest.get("assertions") or []:
        if isinstance(a, dict) and str(a.get("label", "")).startswith("c2pa.actions"):
            for act in (a.get("data") or {}).get("actions") or []:
                agent = act.get("softwareAgent") if isinstance(act, dict) else None
                names.append(str(agent.get("name", "")) if isinstance(agent, dict) else str(agent or ""))
    joined = " ".join(n for n in names if n)
    return next((v for rx, v in _C2PA_VENDORS if rx.search(joined)), None)


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
        return [_ev("c2pa", NONE, "c2pa:unreadable", WEAK, TIER_SIGNED, error=f"{type(exc).__name__}: {exc}",
                    message=f"a C2PA store is present but c2pa-python could not read it ({type(exc).__name__})")]
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest") or "", {})
    types = _source_types(manifest)
    signer = (manifest.get("signature_info") or {})
    detail = {"validation_state": state, "digital_source_types": types, "signer": signer.get("common_name"),
              "issuer": signer.get("issuer"), "claim_generator": manifest.get("claim_generator_info")
              or manifest.get("claim_generator"), "generator": _claim_vendor(manifest)}
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
    cheap = unsigned_evidence(c)
    if _stealth_applies(c, out + cheap):
        cheap += stealth_evidence(data, c)
    return out + cheap


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
