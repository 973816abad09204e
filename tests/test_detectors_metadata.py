"""Metadata provenance on files built here as each tool writes them (tests/metadata_formats.py):
generator text chunks, EXIF (UserComment in every charset, IFD0 and Exif IFD), XMP, IPTC-IIM,
signed C2PA as OpenAI / Adobe Firefly / Microsoft shape it in JPEG, PNG, WebP, AVIF and HEIF,
and corrupt or hostile metadata (a per-file message, never an exception). Stealth LSB metadata:
tests/test_detectors_stealth.py."""
from __future__ import annotations

import json
import struct
import time

import numpy as np
import pytest

from provguard.detectors.containers import MAX_TEXT, read_containers
from provguard.detectors.evidence import Item
from provguard.detectors.metadata import MetadataDetector, scan_metadata
from tests import metadata_formats as F
from tests.metadata_formats import (A1111, CIVITAI, COMFY_PROMPT, COMFY_WORKFLOW, EASYDIFF, FOOOCUS_A1111, FOOOCUS_JSON,
                                    INVOKE3, IPTC_DST, NAI_COMMENT, NMKD, SWARM, UUID)

AI_TYPE = IPTC_DST + "trainedAlgorithmicMedia"


def _reasons(data: bytes, **kw) -> list[str]:
    return [e.reason for e in scan_metadata(data, **kw)]


def _verdicts(data: bytes) -> dict[str, str]:
    return {e.reason: e.verdict for e in scan_metadata(data)}


# -- generator text chunks (PNG) ----------------------------------------------------------------
@pytest.mark.parametrize("text,reason", [
    ({"parameters": A1111}, "png-text:automatic1111"),
    ({"parameters": A1111 + ", Version: f0.0.17v1.8.0rc-latest-276-g29be1da7"}, "png-text:automatic1111"),  # Forge
    ({"parameters": A1111 + ", Version: v1.9.3"}, "png-text:automatic1111"),
    ({"parameters": FOOOCUS_JSON, "fooocus_scheme": "fooocus"}, "png-text:fooocus"),
    ({"parameters": FOOOCUS_A1111, "fooocus_scheme": "a1111"}, "png-text:fooocus"),
    ({"parameters": CIVITAI}, "png-text:civitai"),
    ({"parameters": SWARM}, "png-text:swarmui"),
    ({"prompt": COMFY_PROMPT, "workflow": COMFY_WORKFLOW}, "png-text:comfyui"),
    ({"workflow": COMFY_WORKFLOW}, "png-text:comfyui"),
    ({"invokeai_metadata": INVOKE3}, "png-text:invokeai"),
    ({"invokeai_graph": json.dumps({"id": "g", "nodes": {}, "edges": []})}, "png-text:invokeai"),
    ({"sd-metadata": json.dumps({"model": "stable diffusion", "image": {"prompt": [{"prompt": "a cat"}]}})}, "png-text:invokeai"),
    ({"Dream": '"a cat [blurry]" -s 50 -S 42 -W 512 -H 512 -C 7.5 -A k_lms'}, "png-text:invokeai"),
    ({"GenerationInfoJson": NMKD}, "png-text:nmkd"),
    ({"Nmkdiffusers": json.dumps({"prompt": "a cat", "steps": "25"})}, "png-text:nmkd"),
    (EASYDIFF, "png-text:easydiffusion"),
    ({"Software": "NovelAI", "Source": "Stable Diffusion XL C1E1DE52", "Description": "1girl", "Comment": NAI_COMMENT},
     "png-text:novelai"),
    ({"Comment": NAI_COMMENT}, "png-text:novelai"),
    ({"Description": f"a cat --ar 1:1 --v 6 Job ID: {UUID}", "Author": "someone"}, "png-text:midjourney"),
    ({"Credit": "Made with Google AI"}, "png-text:google"),
    ({"Software": "Adobe Firefly"}, "png-text:adobe-firefly"),
])
def test_png_generator_chunks(text, reason):
    ev = {e.reason: e for e in scan_metadata(F.png(text))}
    assert reason in ev, ev
    assert ev[reason].verdict == "synthetic" and ev[reason].strength == "medium" and ev[reason].tier == "unsigned-metadata"


def test_fooocus_a1111_scheme_is_not_reported_as_automatic1111():
    reasons = _reasons(F.png({"parameters": FOOOCUS_A1111, "fooocus_scheme": "a1111"}))
    assert "png-text:fooocus" in reasons and "png-text:automatic1111" not in reasons


def test_easy_diffusion_plain_prompt_is_not_comfyui():
    assert _reasons(F.png(EASYDIFF)) == ["png-text:easydiffusion"]


def test_compressed_itxt_parameters_are_read():
    assert "png-text:automatic1111" in _reasons(F.png(itxt={"parameters": A1111}))


@pytest.mark.parametrize("text", [
    {"prompt": "write me a poem", "parameters": "exposure 1/250"},
    {"prompt": json.dumps({"text": "a JSON prompt that is no node graph"})},
    {"workflow": json.dumps({"steps": ["a", "b"]})},
    {"Software": "GIMP 2.10.34", "Comment": json.dumps({"camera": "x", "steps": 3})},
    {"Description": "holiday photo, Job ID: 1234"},
    {"parameters": json.dumps({"iso": 100, "shutter": "1/250"})},
])
def test_lookalike_text_is_not_a_generator(text):
    assert _reasons(F.png(text)) == []


def test_no_metadata_is_no_opinion():
    for fmt in ("PNG", "JPEG", "WEBP", "AVIF"):
        assert scan_metadata(F.encode(fmt)) == []


# -- EXIF ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("charset", ["unicode-be", "unicode-le", "ascii"])
def test_exif_usercomment_a1111(fmt, charset):
    data = F.encode(fmt, exif=F.exif(exif_ifd={0x9286: F.user_comment(A1111, charset)}))
    assert _reasons(data) == ["exif:automatic1111"]


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("comment,reason", [
    (CIVITAI, "exif:civitai"), (SWARM, "exif:swarmui"), (json.dumps(EASYDIFF), "exif:easydiffusion"),
])
def test_exif_usercomment_other_tools(fmt, comment, reason):
    data = F.encode(fmt, exif=F.exif(exif_ifd={0x9286: F.user_comment(comment)}))
    assert reason in _reasons(data)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("params,scheme", [(FOOOCUS_JSON, "fooocus"), (FOOOCUS_A1111, "a1111")])
def test_fooocus_exif_in_ifd0(fmt, params, scheme):
    # Fooocus' get_exif(): UserComment, Software and MakerNote (the scheme) written as strings into IFD0
    data = F.encode(fmt, exif=F.exif(ifd0={0x9286: params, 0x0131: "Fooocus v2.5.5", 0x927C: scheme}))
    assert _reasons(data) == ["exif:fooocus"]


@pytest.mark.parametrize("fmt", ["WEBP", "JPEG"])
def test_comfyui_exif_prompt_and_workflow(fmt):
    # ComfyUI's WebP writer: Model (0x0110) "prompt:{...}", Make (0x010F) "workflow:{...}"
    data = F.encode(fmt, exif=F.exif(ifd0={0x0110: "prompt:" + COMFY_PROMPT, 0x010F: "workflow:" + COMFY_WORKFLOW}))
    assert _reasons(data) == ["exif:comfyui"]


def test_swarmui_legacy_exif_model_json():
    assert _reasons(F.encode("JPEG", exif=F.exif(ifd0={0x0110: SWARM}))) == ["exif:swarmui"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_dalle2_export_exif(fmt):
    data = F.encode(fmt, exif=F.exif(exif_ifd={0x9286: F.user_comment("Made with OpenAI Labs", "ascii"),
                                               0x927C: f"OpenAI--ImageGeneration--{UUID}".encode()}))
    ev = scan_metadata(data)
    assert [(e.reason, e.detail["key"]) for e in ev] == [("exif:dall-e", "UserComment")]
    only_maker = F.encode(fmt, exif=F.exif(exif_ifd={0x927C: b"OpenAI--ImageGeneration--" + UUID.encode()}))
    assert [(e.reason, e.detail["key"]) for e in scan_metadata(only_maker)] == [("exif:dall-e", "MakerNote")]


@pytest.mark.parametrize("software,reason", [("NovelAI", "exif:novelai"), ("Adobe Firefly (Beta)", "exif:adobe-firefly"),
                                             ("Draw Things", "exif:drawthings"), ("Midjourney", "exif:midjourney")])
def test_exif_software_naming_a_generator(software, reason):
    assert _reasons(F.encode("JPEG", exif=F.exif(ifd0={0x0131: software}))) == [reason]


def test_plain_camera_exif_is_no_opinion():
    data = F.encode("JPEG", exif=F.exif(ifd0={0x0131: "Camera firmware 1.2", 0x010F: "Canon", 0x0110: "EOS 350D"},
                                        exif_ifd={0x9286: F.user_comment("holiday", "ascii"), 0x927C: b"\x00\x01MakerNote"}))
    assert _reasons(data) == []


# -- XMP ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    f'Iptc4xmpExt:DigitalSourceType="{AI_TYPE}"/>',
    f'><Iptc4xmpExt:DigitalSourceType>{AI_TYPE}</Iptc4xmpExt:DigitalSourceType></rdf:Description>',
    f'><Iptc4xmpExt:DigitalSourceType rdf:resource="{AI_TYPE}"/></rdf:Description>',
    'Iptc4xmpExt:DigitalSourceType="trainedAlgorithmicMedia"/>',
])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_xmp_digital_source_type_forms(body, fmt):
    packet = F.xmp(body)
    data = F.png(itxt={"XML:com.adobe.xmp": packet}) if fmt == "PNG" else F.encode(fmt, xmp=packet.encode())
    assert _verdicts(data) == {"xmp:digitalsourcetype:trainedAlgorithmicMedia": "synthetic"}


@pytest.mark.parametrize("kind,verdict", [("compositeWithTrainedAlgorithmicMedia", "synthetic"), ("algorithmicMedia", "synthetic"),
                                          ("digitalCapture", "none"), ("algorithmicallyEnhanced", "none")])
def test_xmp_source_type_vocabulary(kind, verdict):
    data = F.encode("JPEG", xmp=F.xmp(f'Iptc4xmpExt:DigitalSourceType="{IPTC_DST}{kind}"/>').encode())
    assert _verdicts(data) == {f"xmp:digitalsourcetype:{kind}": verdict}


def test_xmp_google_credit():
    v = _verdicts(F.encode("JPEG", xmp=F.xmp('photoshop:Credit="Made with Google AI"/>').encode()))
    assert v == {"xmp:google": "synthetic"}


def test_midjourney_png_as_written():
    """Description (prompt + Job ID), Author, and an XMP packet with DigImageGUID and the IPTC source type."""
    packet = F.xmp(f'Iptc4xmpExt:DigImageGUID="{UUID}" Iptc4xmpExt:DigitalSourceType="{AI_TYPE}">'
                   f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">a cat --v 6 Job ID: {UUID}</rdf:li></rdf:Alt>'
                   '</dc:description></rdf:Description>')
    data = F.png({"Description": f"a cat --v 6 Job ID: {UUID}", "Author": "someone"}, itxt={"XML:com.adobe.xmp": packet})
    assert sorted(_reasons(data)) == ["png-text:midjourney", "xmp:digitalsourcetype:trainedAlgorithmicMedia", "xmp:midjourney"]


def test_dig_image_guid_alone_is_not_midjourney():
    # DigImageGUID is a generic IPTC Extension field: on its own it names no generator
    assert _reasons(F.encode("JPEG", xmp=F.xmp(f'Iptc4xmpExt:DigImageGUID="{UUID}"/>').encode())) == []


@pytest.mark.parametrize("creator", [True, False])
def test_draw_things_xmp(creator):
    dt = json.dumps({"c": "a cat", "uc": "blurry", "sampler": "DPM++ 2M Karras", "seed": 1, "steps": 20, "scale": 7,
                     "size": "512x512", "model": "sd_xl_base_1.0_f16.ckpt"})
    esc = dt.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    body = (('xmp:CreatorTool="Draw Things"' if creator else "") +
            f'><exif:UserComment><rdf:Alt><rdf:li xml:lang="x-default">{esc}</rdf:li></rdf:Alt></exif:UserComment>'
            '</rdf:Description>')
    assert _reasons(F.png(itxt={"XML:com.adobe.xmp": F.xmp(body)})) == ["xmp:drawthings"]


# -- IPTC-IIM (APP13 Photoshop 8BIM 0x0404) -----------------------------------------------------
def test_iptc_iim_credit():
    assert _reasons(F.jpeg_with_app13({(2, 110): b"Made with Google AI"})) == ["iptc:google"]


@pytest.mark.parametrize("dataset", [(2, 40), (2, 115), (2, 120)])
@pytest.mark.parametrize("kind", ["trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia"])
def test_iptc_iim_digital_source_type(dataset, kind):
    data = F.jpeg_with_app13({(2, 5): b"title", dataset: (IPTC_DST + kind).encode()})
    ev = scan_metadata(data)
    assert [(e.reason, e.verdict, e.detail["value"]) for e in ev] == [
        (f"iptc:digitalsourcetype:{kind}", "synthetic", IPTC_DST + kind)]


def test_iptc_iim_originating_program():
    assert _reasons(F.jpeg_with_app13({(2, 65): b"Midjourney"})) == ["iptc:midjourney"]
    assert _reasons(F.jpeg_with_app13({(2, 65): b"Adobe Photoshop", (2, 110): b"Reuters"})) == []


# -- corrupt and hostile metadata ---------------------------------------------------------------
def _messages(data: bytes) -> dict[str, str]:
    return {e.reason: e.detail.get("message") for e in scan_metadata(data)}


def test_malformed_xmp_reported_but_signals_still_found():
    bad = F.xmp(f'Iptc4xmpExt:DigitalSourceType="{AI_TYPE}"><unclosed>')
    msgs = _messages(F.png(itxt={"XML:com.adobe.xmp": bad}))
    assert "xmp:digitalsourcetype:trainedAlgorithmicMedia" in msgs
    assert "not well-formed" in msgs["metadata:corrupt:xmp"]


def test_xmp_entities_never_expanded():
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>')
    msgs = _messages(F.png(itxt={"XML:com.adobe.xmp": bomb}))
    assert list(msgs) == ["metadata:corrupt:xmp-doctype"] and "nothing was expanded" in msgs["metadata:corrupt:xmp-doctype"]


def test_truncated_png_chunk_keeps_earlier_signals():
    data = F.png({"parameters": A1111})
    msgs = _messages(data[: data.index(b"IDAT") + 20])
    assert "png-text:automatic1111" in msgs and "past the end of the file" in msgs["metadata:corrupt:png:truncated-chunk"]


def _insert_png_chunk(ctype: bytes, payload: bytes) -> bytes:
    png = F.png()
    return png[:33] + struct.pack(">I", len(payload)) + ctype + payload + b"\x00\x00\x00\x00" + png[33:]


def test_malformed_text_chunks():
    msgs = _messages(_insert_png_chunk(b"zTXt", b"parameters\x00\x00" + b"not zlib at all"))
    assert msgs["metadata:corrupt:png:bad-compressed-text:parameters"].endswith("(key 'parameters')")
    assert "metadata:corrupt:png:malformed-tEXt" in _messages(_insert_png_chunk(b"tEXt", b"no separator here"))
    assert "metadata:corrupt:png:malformed-iTXt" in _messages(_insert_png_chunk(b"iTXt", b"parameters\x00\x01"))


def test_ztxt_bomb_is_capped():
    import zlib

    z = zlib.compressobj(6)
    block = b" " * (1 << 20)
    bomb = z.compress(A1111.encode()) + b"".join(z.compress(block) for _ in range(64)) + z.flush()  # inflates to 64 MiB
    data = _insert_png_chunk(b"zTXt", b"parameters\x00\x00" + bomb)
    t = time.perf_counter()
    c = read_containers(data)
    assert time.perf_counter() - t < 2.0
    assert len(c.text["parameters"]) == MAX_TEXT and c.oversized == ["parameters"]
    assert "png-text:automatic1111" in _reasons(data)


def test_bad_jpeg_segment_length():
    jpg = bytearray(F.encode("JPEG", exif=F.exif(exif_ifd={0x9286: F.user_comment(A1111)})))
    jpg[4:6] = b"\xff\xff"  # APP segment claims 65535 bytes
    assert list(_messages(bytes(jpg))) == ["metadata:corrupt:jpeg:truncated-segment"]


@pytest.mark.parametrize("blob,says", [
    (b"Exif\x00\x00II*\x00\xff\xff\xff\x7f garbage", "points outside"),
    (b"II*\x00\x08\x00\x00\x00\xff\x00", "declares 255 entries"),
    (b"MM\x00*\x00\x00\x00\x08\x00\x01\x01\x31\x00\x02\x00\x00\x00\x40\x00\x00\x00\x20", "past the end"),
    (b"XX*\x00", "TIFF header"),
])
def test_malformed_exif_is_a_message(blob, says):
    ev = scan_metadata(F.encode("WEBP", exif=blob))
    assert [e.reason for e in ev] == ["metadata:corrupt:exif"] and says in ev[0].detail["message"]


def test_huge_text_chunk_is_capped():
    big = A1111 + "x" * (3 * MAX_TEXT)
    c = read_containers(F.png({"parameters": big}))
    assert len(c.text["parameters"]) == MAX_TEXT and c.oversized == ["parameters"]
    msgs = _messages(F.png({"parameters": big}))
    assert "png-text:automatic1111" in msgs and "parameters" in msgs["metadata:oversized"]


def test_broken_iim_records():
    good = F.jpeg_with_app13({(2, 110): b"Made with Google AI"})
    i = good.index(b"\x1c\x02\x6e")
    cut = bytearray(good)
    cut[i + 3:i + 5] = struct.pack(">H", 4000)  # dataset claims more than its record holds
    assert "metadata:corrupt:iptc:truncated-dataset" in _messages(bytes(cut))
    ext = bytearray(good)
    ext[i + 3:i + 5] = b"\x80\x04"  # extended-length form
    assert "over 32 KB" in _messages(bytes(ext))["metadata:corrupt:iptc:extended-dataset"]


def test_truncated_bmff_box():
    avif = F.encode("AVIF")
    assert "metadata:corrupt:bmff:truncated-box" in _messages(avif[:-10])


def test_every_problem_carries_a_message_and_random_damage_never_raises():
    """Truncations and byte flips of every kind of file built here: evidence only, never an exception."""
    rng = np.random.default_rng(0)
    files = [F.png({"parameters": A1111}, itxt={"XML:com.adobe.xmp": F.xmp(f'Iptc4xmpExt:DigitalSourceType="{AI_TYPE}"/>')}),
             F.encode("JPEG", exif=F.exif(exif_ifd={0x9286: F.user_comment(A1111)}), xmp=F.xmp("/>").encode()),
             F.encode("WEBP", exif=F.exif(ifd0={0x0110: "prompt:" + COMFY_PROMPT})),
             F.jpeg_with_app13({(2, 110): b"Made with Google AI"}), F.encode("AVIF"),
             F.stealth_png(A1111, "alpha", True, size=128)]
    for data in files:
        for _ in range(40):
            bad = bytearray(data[: rng.integers(8, len(data))] if rng.random() < 0.5 else data)
            for pos in rng.integers(0, len(bad), 4):
                bad[pos] = rng.integers(0, 256)
            for e in scan_metadata(bytes(bad)):
                if e.reason.startswith(("metadata:", "c2pa:unreadable")):
                    assert isinstance(e.detail.get("message"), str) and e.detail["message"], e


def test_detector_protocol_on_items(tmp_path):
    p = tmp_path / "a.png"
    p.write_bytes(F.png({"parameters": A1111}))
    out = MetadataDetector().score_batch([Item(path=p), Item(rgb=F.rgb())])
    assert [e.reason for e in out[0]] == ["png-text:automatic1111"] and out[1] == []


# -- C2PA ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki():
    return F.make_pki()


def _heif_source() -> bytes:
    """A HEIF container (major brand ``mif1``, no ``avif`` brand) holding Pillow's AV1 image item."""
    a = F.encode("AVIF")
    return a[:8] + b"mif1" + a[12:16] + a[16:32].replace(b"avif", b"mif1") + a[32:]


_C2PA_FORMATS = {"JPEG": ("image/jpeg", lambda: F.encode("JPEG"), "jpeg"), "PNG": ("image/png", lambda: F.encode("PNG"), "png"),
                 "WEBP": ("image/webp", lambda: F.encode("WEBP"), "webp"), "AVIF": ("image/avif", lambda: F.encode("AVIF"), "avif"),
                 "HEIF": ("image/heif", _heif_source, "heif")}


@pytest.mark.parametrize("fmt", list(_C2PA_FORMATS))
@pytest.mark.parametrize("vendor", list(F.C2PA_VENDOR_MANIFESTS))
def test_c2pa_vendor_manifests_in_every_container(pki, fmt, vendor):
    mime, source, sniffed = _C2PA_FORMATS[fmt]
    data = F.c2pa_signed(pki, mime, source(), vendor=vendor)
    c = read_containers(data)
    assert c.format == sniffed and c.c2pa_store
    ev = scan_metadata(data, trust_anchors=pki["ca"])
    assert [e.reason for e in ev] == ["c2pa:trusted:trainedAlgorithmicMedia"]
    assert ev[0].strength == "strong" and ev[0].tier == "signed-provenance" and ev[0].detail["generator"] == vendor
    assert ev[0].detail["claim_generator"][0]["name"] == F.C2PA_VENDOR_MANIFESTS[vendor]["claim_generator_info"][0]["name"]


def test_c2pa_untrusted_signer_is_reported_as_such(pki):
    data = F.c2pa_signed(pki, "image/png", F.encode("PNG"))
    for anchors in (None, pki["other_ca"]):
        ev = scan_metadata(data, trust_anchors=anchors)
        assert [(e.reason, e.strength) for e in ev] == [("c2pa:untrusted:trainedAlgorithmicMedia", "medium")]


def test_c2pa_tampered_is_invalid_not_synthetic(pki):
    data = bytearray(F.c2pa_signed(pki, "image/png", F.encode("PNG")))
    data[data.index(b"IDAT") + 40] ^= 0xFF  # change a pixel byte covered by the hard binding
    ev = scan_metadata(bytes(data), trust_anchors=pki["ca"])
    assert [(e.reason, e.verdict) for e in ev] == [("c2pa:invalid", "none")]
    assert "assertion.dataHash.mismatch" in ev[0].detail["failures"]


def test_c2pa_trusted_capture_is_real(pki):
    ev = scan_metadata(F.c2pa_signed(pki, "image/jpeg", F.encode("JPEG"), IPTC_DST + "digitalCapture"), trust_anchors=pki["ca"])
    assert [(e.reason, e.verdict, e.strength) for e in ev] == [("c2pa:trusted:digitalCapture", "real", "strong")]


def _garbage_store(fmt: str) -> bytes:
    junk = b"\x00\x00\x00\x10jumbgarbage!" * 4
    if fmt == "JPEG":
        jpg, seg = F.encode("JPEG"), b"JP\x00\x00\x00\x00\x00\x01" + junk
        return jpg[:2] + b"\xff\xeb" + struct.pack(">H", len(seg) + 2) + seg + jpg[2:]
    if fmt == "PNG":
        return _insert_png_chunk(b"caBX", junk)
    if fmt == "WEBP":
        web = F.encode("WEBP")
        body = web[12:] + b"C2PA" + struct.pack("<I", len(junk)) + junk
        return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body
    avif = F.encode("AVIF")
    box = bytes.fromhex("d8fec3d61b0e483c92975828877ec481") + junk
    return avif + struct.pack(">I", 8 + len(box)) + b"uuid" + box


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "AVIF"])
def test_unparsable_c2pa_store_is_a_message_not_a_crash(fmt):
    data = _garbage_store(fmt)
    assert read_containers(data).c2pa_store
    ev = scan_metadata(data)
    assert [e.reason for e in ev] == ["c2pa:unreadable"]
    assert "could not read it" in ev[0].detail["message"] and ev[0].detail["error"]
