"""Metadata provenance on real files built here: signed C2PA (trusted / untrusted / tampered / broken),
generator PNG chunks, JPEG/WebP EXIF UserComment, XMP packets, IPTC-IIM, and corrupt metadata."""
from __future__ import annotations

import datetime
import io
import json
import struct

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from provguard.detectors.containers import MAX_TEXT, read_containers
from provguard.detectors.evidence import Item
from provguard.detectors.metadata import MetadataDetector, scan_metadata

A1111 = ("a photo of a cat, highly detailed\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
         "Seed: 1234, Size: 512x512, Model: sd_xl_base_1.0")
AI_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _rgb(seed=0, size=64):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _png(text: dict[str, str] | None = None, itxt: dict[str, str] | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    for k, v in (itxt or {}).items():
        info.add_itxt(k, v, zip=True)
    buf = io.BytesIO()
    Image.fromarray(_rgb()).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def _exif_usercomment(text: str, charset: str = "utf-16-be") -> bytes:
    exif = Image.Exif()
    payload = (b"UNICODE\x00" + text.encode(charset)) if charset != "ascii" else b"ASCII\x00\x00\x00" + text.encode()
    exif.get_ifd(0x8769)[0x9286] = payload
    return exif.tobytes()


def _encode(fmt: str, **opts) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_rgb()).save(buf, format=fmt, **opts)
    return buf.getvalue()


def _xmp(body: str) -> bytes:
    return ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            f'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" {body}</rdf:RDF></x:xmpmeta>'
            '<?xpacket end="w"?>').encode()


def _reasons(data: bytes, **kw) -> list[str]:
    return [e.reason for e in scan_metadata(data, **kw)]


def _verdicts(data: bytes) -> dict[str, str]:
    return {e.reason: e.verdict for e in scan_metadata(data)}


# -- generator text chunks ----------------------------------------------------------------------
@pytest.mark.parametrize("text,reason", [
    ({"parameters": A1111}, "png-text:automatic1111"),
    ({"prompt": json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1}}})}, "png-text:comfyui"),
    ({"workflow": json.dumps({"nodes": [], "links": []})}, "png-text:comfyui"),
    ({"invokeai_metadata": json.dumps({"model": "sd-1.5"})}, "png-text:invokeai"),
    ({"Dream": '"a cat" -s 50 -S 42'}, "png-text:invokeai"),
    ({"Software": "NovelAI", "Comment": json.dumps({"steps": 28})}, "png-text:novelai"),
    ({"Description": "a cat --ar 1:1 Job ID: 1234abcd-0000"}, "png-text:midjourney"),
    ({"Credit": "Made with Google AI"}, "png-text:google"),
])
def test_png_generator_chunks(text, reason):
    ev = {e.reason: e for e in scan_metadata(_png(text))}
    assert reason in ev
    assert ev[reason].verdict == "synthetic" and ev[reason].strength == "medium" and ev[reason].tier == "unsigned-metadata"


def test_compressed_itxt_parameters_are_read():
    assert "png-text:automatic1111" in _reasons(_png(itxt={"parameters": A1111}))


def test_lookalike_text_is_not_a_generator():
    # a "prompt" that is not ComfyUI JSON, a "parameters" without A1111's settings line
    assert _reasons(_png({"prompt": "write me a poem", "parameters": "exposure 1/250"})) == []


def test_no_metadata_is_no_opinion():
    for fmt in ("PNG", "JPEG", "WEBP"):
        assert scan_metadata(_encode(fmt)) == []


# -- EXIF ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("charset", ["utf-16-be", "utf-16-le", "ascii"])
def test_exif_usercomment_a1111(fmt, charset):
    data = _encode(fmt, exif=_exif_usercomment(A1111, charset))
    assert "exif:automatic1111" in _reasons(data)


def test_exif_software_novelai_in_jpeg():
    exif = Image.Exif()
    exif[0x0131] = "NovelAI"
    assert "exif:novelai" in _reasons(_encode("JPEG", exif=exif.tobytes()))


def test_plain_camera_exif_is_no_opinion():
    exif = Image.Exif()
    exif[0x0131] = "Camera firmware 1.2"
    exif[0x010F] = "Canon"
    assert _reasons(_encode("JPEG", exif=exif.tobytes())) == []


# -- XMP / IPTC ---------------------------------------------------------------------------------
def test_xmp_digital_source_type_attribute_in_png():
    data = _png(itxt={"XML:com.adobe.xmp": _xmp(f'Iptc4xmpExt:DigitalSourceType="{AI_TYPE}"/>').decode()})
    assert _verdicts(data) == {"xmp:digitalsourcetype:trainedAlgorithmicMedia": "synthetic"}


def test_xmp_element_form_in_jpeg_and_webp():
    body = f'><Iptc4xmpExt:DigitalSourceType>{AI_TYPE.replace("trained", "compositeWithTrained")}</Iptc4xmpExt:DigitalSourceType></rdf:Description>'
    for fmt in ("JPEG", "WEBP"):
        v = _verdicts(_encode(fmt, xmp=_xmp(body)))
        assert v.get("xmp:digitalsourcetype:compositeWithTrainedAlgorithmicMedia") == "synthetic", (fmt, v)


def test_xmp_capture_type_is_no_opinion_and_google_credit():
    v = _verdicts(_encode("JPEG", xmp=_xmp(
        'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture" '
        'photoshop:Credit="Made with Google AI"/>')))
    assert v == {"xmp:digitalsourcetype:digitalCapture": "none", "xmp:google": "synthetic"}


def test_iptc_iim_credit_in_photoshop_app13():
    credit = b"Made with Google AI"
    iim = b"\x1c\x02\x6e" + struct.pack(">H", len(credit)) + credit
    irb = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iim)) + iim
    seg = b"Photoshop 3.0\x00" + irb
    jpg = _encode("JPEG")
    data = jpg[:2] + b"\xff\xed" + struct.pack(">H", len(seg) + 2) + seg + jpg[2:]
    assert "iptc:google" in _reasons(data)


# -- corrupt and hostile metadata ---------------------------------------------------------------
def test_malformed_xmp_reported_but_signals_still_found():
    bad = _xmp(f'Iptc4xmpExt:DigitalSourceType="{AI_TYPE}"><unclosed>').decode()
    reasons = _reasons(_png(itxt={"XML:com.adobe.xmp": bad}))
    assert "metadata:corrupt:xmp" in reasons and "xmp:digitalsourcetype:trainedAlgorithmicMedia" in reasons


def test_xmp_entities_never_expanded():
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>')
    assert _reasons(_png(itxt={"XML:com.adobe.xmp": bomb})) == ["metadata:corrupt:xmp-doctype"]


def test_truncated_png_chunk_keeps_earlier_signals():
    data = _png({"parameters": A1111})
    cut = data[: data.index(b"IDAT") + 20]
    reasons = _reasons(cut)
    assert "png-text:automatic1111" in reasons and "metadata:corrupt:png:truncated-chunk" in reasons


def test_bad_zlib_text_chunk_and_bad_lengths():
    payload = b"parameters\x00\x00" + b"not zlib at all"
    chunk = struct.pack(">I", len(payload)) + b"zTXt" + payload + b"\x00\x00\x00\x00"
    png = _png()
    data = png[:33] + chunk + png[33:]
    assert "metadata:corrupt:png:bad-compressed-text:parameters" in _reasons(data)
    jpg = bytearray(_encode("JPEG", exif=_exif_usercomment(A1111)))
    jpg[4:6] = b"\xff\xff"  # APP segment claims 65535 bytes
    assert _reasons(bytes(jpg)) == ["metadata:corrupt:jpeg:truncated-segment"]


def test_corrupt_exif_block_is_reported_not_raised():
    data = _encode("WEBP", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f garbage")
    ev = scan_metadata(data)
    assert all(e.verdict == "none" for e in ev)


def test_huge_text_chunk_is_capped():
    big = A1111 + "x" * (3 * MAX_TEXT)
    c = read_containers(_png({"parameters": big}))
    assert len(c.text["parameters"]) == MAX_TEXT and c.oversized == ["parameters"]
    reasons = _reasons(_png({"parameters": big}))
    assert "png-text:automatic1111" in reasons and "metadata:oversized" in reasons


def test_detector_protocol_on_items(tmp_path):
    p = tmp_path / "a.png"
    p.write_bytes(_png({"parameters": A1111}))
    det = MetadataDetector()
    out = det.score_batch([Item(path=p), Item(rgb=_rgb())])
    assert [e.reason for e in out[0]] == ["png-text:automatic1111"] and out[1] == []


# -- C2PA ---------------------------------------------------------------------------------------
def _name(cn):
    from cryptography.x509 import Name, NameAttribute
    from cryptography.x509.oid import NameOID

    return Name([NameAttribute(NameOID.COMMON_NAME, cn), NameAttribute(NameOID.ORGANIZATION_NAME, "provguard tests")])


def _cert(subject, issuer, pub, sign_key, ca: bool, issuer_pub):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.timezone.utc)
    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
                 encipher_only=False, decipher_only=False)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(pub)
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
    if not ca:
        b = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_pub), critical=False))
    return b.sign(sign_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki():
    """A throwaway CA and an ES256 leaf (digitalSignature, emailProtection, AKI/SKI), generated here."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert(_name("provguard test CA"), _name("provguard test CA"), ca_key.public_key(), ca_key, True, None)
    leaf = _cert(_name("provguard test signer"), ca.subject, leaf_key.public_key(), ca_key, False, ca_key.public_key())
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert(_name("some other CA"), _name("some other CA"), other_key.public_key(), other_key, True, None)
    key_pem = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    return {"chain": pem(leaf) + pem(ca), "key": key_pem, "ca": pem(ca).decode(), "other_ca": pem(other).decode()}


def _signed(pki, fmt: str, source_type: str = AI_TYPE) -> bytes:
    import c2pa

    mime = {"PNG": "image/png", "JPEG": "image/jpeg"}[fmt]
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", pki["chain"], pki["key"], None))
    manifest = {"claim_generator_info": [{"name": "provguard-tests", "version": "1"}], "title": "fixture",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": source_type}]}}]}
    dst = io.BytesIO()
    c2pa.Builder(json.dumps(manifest)).sign(signer, mime, io.BytesIO(_encode(fmt)), dst)
    return dst.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_c2pa_trusted_ai_is_strong_synthetic(pki, fmt):
    ev = scan_metadata(_signed(pki, fmt), trust_anchors=pki["ca"])
    assert [e.reason for e in ev] == ["c2pa:trusted:trainedAlgorithmicMedia"]
    assert ev[0].verdict == "synthetic" and ev[0].strength == "strong" and ev[0].tier == "signed-provenance"
    assert ev[0].detail["signer"] == "provguard test signer"


def test_c2pa_untrusted_signer_is_reported_as_such(pki):
    data = _signed(pki, "PNG")
    for anchors in (None, pki["other_ca"]):
        ev = scan_metadata(data, trust_anchors=anchors)
        assert [(e.reason, e.strength) for e in ev] == [("c2pa:untrusted:trainedAlgorithmicMedia", "medium")]


def test_c2pa_tampered_is_invalid_not_synthetic(pki):
    data = bytearray(_signed(pki, "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 40] ^= 0xFF  # change a pixel byte covered by the hard binding
    ev = scan_metadata(bytes(data), trust_anchors=pki["ca"])
    assert [(e.reason, e.verdict) for e in ev] == [("c2pa:invalid", "none")]
    assert "assertion.dataHash.mismatch" in ev[0].detail["failures"]


def test_c2pa_trusted_capture_is_real(pki):
    ev = scan_metadata(_signed(pki, "JPEG", "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"),
                       trust_anchors=pki["ca"])
    assert [(e.reason, e.verdict, e.strength) for e in ev] == [("c2pa:trusted:digitalCapture", "real", "strong")]


def test_invalid_jumbf_is_unreadable_not_a_crash():
    jpg = _encode("JPEG")
    seg = b"JP\x00\x00\x00\x00\x00\x01" + b"\x00\x00\x00\x10jumbgarbage!" * 4
    data = jpg[:2] + b"\xff\xeb" + struct.pack(">H", len(seg) + 2) + seg + jpg[2:]
    assert read_containers(data).c2pa_store
    assert _reasons(data) == ["c2pa:unreadable"]
