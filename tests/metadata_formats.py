"""Writers for the metadata formats of real generator tools, built from each format's description.

Used by ``tests/test_detectors_metadata*.py`` and ``benchmarks/metadata_speed.py``; nothing is
downloaded or committed. Each writer produces the bytes a tool would write: PNG text chunks via
Pillow's ``PngInfo``, EXIF via ``PIL.Image.Exif`` (UserComment with its 8-byte charset prefix),
XMP packets, Photoshop APP13 IPTC-IIM records, stealth LSB payloads laid out column by column, and
C2PA manifests signed by c2pa-python with a throwaway CA.
"""
from __future__ import annotations

import datetime
import gzip
import io
import json
import struct

import numpy as np
from PIL import Image, PngImagePlugin

A1111 = ("a photo of a cat, highly detailed\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
         "Seed: 1234, Size: 512x512, Model: sd_xl_base_1.0")
IPTC_DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"
UUID = "2e3d5c1a-7f4b-4c2d-9a1e-0b6c8d9e0f12"


# -- sample payloads, shaped as each tool writes them ---------------------------------------------
COMFY_PROMPT = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "model": ["4", 0]}},
                           "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}}})
COMFY_WORKFLOW = json.dumps({"last_node_id": 4, "nodes": [{"id": 3, "type": "KSampler"}], "links": []})
FOOOCUS_JSON = json.dumps({"adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion",
                           "base_model_hash": "aeb7e9e689", "loras": [], "vae": "Default (model)", "full_prompt": ["a cat"],
                           "full_negative_prompt": [], "guidance_scale": 4, "metadata_scheme": "fooocus", "performance": "Speed",
                           "prompt": "a cat", "negative_prompt": "", "resolution": "(1152, 896)", "sampler": "dpmpp_2m_sde_gpu",
                           "scheduler": "karras", "seed": "1", "sharpness": 2, "steps": 30, "version": "Fooocus v2.5.5"}, sort_keys=True)
FOOOCUS_A1111 = ("a cat\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M SDE Karras, Seed: 1, Size: 1152x896, CFG scale: 4, "
                 "Sharpness: 2, ADM Guidance: \"(1.5, 0.8, 0.3)\", Model: juggernautXL_v8Rundiffusion, Performance: Speed, "
                 "Scheduler: karras, Version: Fooocus v2.5.5")
CIVITAI = A1111 + (', Civitai resources: [{"type":"checkpoint","modelVersionId":290640}], '
                   'Civitai metadata: {"remixOfId":1}')
SWARM = json.dumps({"sui_image_params": {"prompt": "a cat", "negativeprompt": "", "model": "OfficialStableDiffusion/sd_xl_base_1.0",
                                         "seed": 1, "steps": 20, "cfgscale": 7, "width": 1024, "height": 1024},
                    "sui_extra_data": {"date": "2024-05-01"}})
EASYDIFF = {"prompt": "a cat", "negative_prompt": "blurry", "seed": "1", "use_stable_diffusion_model": "sd-v1-4",
            "num_inference_steps": "25", "guidance_scale": "7.5", "width": "512", "height": "512", "sampler_name": "euler_a"}
NAI_COMMENT = json.dumps({"prompt": "1girl", "steps": 28, "height": 1216, "width": 832, "scale": 5.0, "seed": 1,
                          "n_samples": 1, "sampler": "k_euler_ancestral", "uc": "lowres", "request_type": "PromptGenerateRequest"})
INVOKE3 = json.dumps({"generation_mode": "txt2img", "positive_prompt": "a cat", "negative_prompt": "", "width": 512,
                      "height": 512, "seed": 1, "cfg_scale": 7.5, "steps": 30, "scheduler": "euler",
                      "model": {"model_name": "stable-diffusion-v1-5", "base_model": "sd-1", "model_type": "main"}})
NMKD = json.dumps({"Model": "sd-v1-5", "Prompt": "a cat", "NegativePrompt": "", "Steps": 25, "Seed": 1, "Scale": 7})


def rgb(seed: int = 0, size: int = 64, channels: int = 3) -> np.ndarray:
    """Random ``uint8`` ``(size, size, channels)`` pixels (alpha, if any, random too)."""
    return np.random.default_rng(seed).integers(0, 256, (size, size, channels), dtype=np.uint8)


def encode(fmt: str, pixels: np.ndarray | None = None, **opts) -> bytes:
    """``pixels`` (default :func:`rgb`) saved by Pillow as ``fmt`` with save options ``opts``."""
    buf = io.BytesIO()
    Image.fromarray(rgb() if pixels is None else pixels).save(buf, format=fmt, **opts)
    return buf.getvalue()


def png(text: dict[str, str] | None = None, itxt: dict[str, str] | None = None, pixels: np.ndarray | None = None) -> bytes:
    """A PNG with tEXt chunks ``text`` and compressed iTXt chunks ``itxt``."""
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    for k, v in (itxt or {}).items():
        info.add_itxt(k, v, zip=True)
    return encode("PNG", pixels, pnginfo=info)


def user_comment(text: str, charset: str = "unicode-be") -> bytes:
    """An EXIF UserComment value: 8-byte charset prefix + body, as A1111 (piexif), Forge and others write it."""
    if charset == "unicode-be":
        return b"UNICODE\x00" + text.encode("utf-16-be")
    if charset == "unicode-le":
        return b"UNICODE\x00" + text.encode("utf-16-le")
    if charset == "ascii":
        return b"ASCII\x00\x00\x00" + text.encode()
    raise ValueError(charset)


def exif(ifd0: dict[int, object] | None = None, exif_ifd: dict[int, object] | None = None) -> bytes:
    """An EXIF block with tags in IFD0 and in the Exif sub-IFD (0x8769)."""
    e = Image.Exif()
    for tag, v in (ifd0 or {}).items():
        e[tag] = v
    sub = e.get_ifd(0x8769)
    for tag, v in (exif_ifd or {}).items():
        sub[tag] = v
    return e.tobytes()


def xmp(body: str) -> str:
    """An XMP packet whose rdf:Description carries ``body`` (attributes, then ``/>`` or children)."""
    return ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
            f'xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" {body}'
            '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def jpeg_with_app13(datasets: dict[tuple[int, int], bytes], jpeg: bytes | None = None) -> bytes:
    """A JPEG with an APP13 Photoshop 3.0 segment holding one 8BIM 0x0404 resource of IIM ``datasets``."""
    iim = b"".join(b"\x1c" + bytes([r, n]) + struct.pack(">H", len(v)) + v for (r, n), v in datasets.items())
    irb = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iim)) + iim + (b"\x00" if len(iim) % 2 else b"")
    seg = b"Photoshop 3.0\x00" + irb
    jpg = jpeg or encode("JPEG")
    return jpg[:2] + b"\xff\xed" + struct.pack(">H", len(seg) + 2) + seg + jpg[2:]


# -- stealth ----------------------------------------------------------------------------------
def stealth_stream(payload: bytes, mode: str, compressed: bool, nbits: int | None = None) -> np.ndarray:
    """The bit stream the stealth-pnginfo extension writes: magic, 32-bit length in bits, payload (MSB first)."""
    magic = f"stealth_{'png' if mode == 'alpha' else 'rgb'}{'comp' if compressed else 'info'}".encode()
    body = gzip.compress(payload) if compressed else payload
    header = struct.pack(">I", len(body) * 8 if nbits is None else nbits)
    return np.unpackbits(np.frombuffer(magic + header + body, np.uint8))


def embed_stealth(pixels: np.ndarray, bits: np.ndarray, mode: str) -> np.ndarray:
    """Write ``bits`` into the LSBs of ``pixels`` column by column (x outer, y inner), as the extension does."""
    out = np.ascontiguousarray(pixels.transpose(1, 0, 2)).copy()  # (W, H, C): row-major order = x outer, y inner
    flat = out.reshape(-1, out.shape[2])
    if mode == "alpha":
        flat[:len(bits), 3] = (flat[:len(bits), 3] & 0xFE) | bits
    else:
        lanes = flat[:, :3].reshape(-1).copy()
        lanes[:len(bits)] = (lanes[:len(bits)] & 0xFE) | bits
        flat[:, :3] = lanes.reshape(-1, 3)
    return np.ascontiguousarray(out.transpose(1, 0, 2))


def stealth_png(text: str | bytes, mode: str = "alpha", compressed: bool = True, size: int = 256,
                nbits: int | None = None, fmt: str = "PNG", **opts) -> bytes:
    """An image (RGBA for alpha mode, RGB for rgb mode) carrying ``text`` as stealth metadata."""
    payload = text.encode() if isinstance(text, str) else text
    pixels = rgb(7, size, 4 if mode == "alpha" else 3)
    return encode(fmt, embed_stealth(pixels, stealth_stream(payload, mode, compressed, nbits), mode), **opts)


NOVELAI_STEALTH = json.dumps({
    "Title": "AI generated image", "Description": "1girl, solo", "Software": "NovelAI",
    "Source": "Stable Diffusion XL C1E1DE52", "Generation time": "3.2",
    "Comment": json.dumps({"prompt": "1girl, solo", "steps": 28, "height": 1216, "width": 832, "scale": 5.0,
                           "uncond_scale": 1.0, "seed": 1, "n_samples": 1, "noise_schedule": "native",
                           "sampler": "k_euler_ancestral", "uc": "lowres", "request_type": "PromptGenerateRequest"})})


# -- C2PA ---------------------------------------------------------------------------------------
def _name(cn: str):
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


def make_pki() -> dict:
    """A throwaway CA and an ES256 leaf (digitalSignature, emailProtection, AKI/SKI), plus an unrelated CA."""
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


#: Manifests shaped as each vendor writes them (claim generator + c2pa.actions with digitalSourceType).
C2PA_VENDOR_MANIFESTS = {
    "openai": {"claim_generator_info": [{"name": "ChatGPT", "version": "1"}],
               "actions": [{"action": "c2pa.created", "digitalSourceType": IPTC_DST + "trainedAlgorithmicMedia",
                            "softwareAgent": {"name": "GPT-4o"}}]},
    "adobe-firefly": {"claim_generator_info": [{"name": "Adobe Firefly", "version": "3.0"}],
                      "actions": [{"action": "c2pa.created", "digitalSourceType": IPTC_DST + "trainedAlgorithmicMedia",
                                   "softwareAgent": {"name": "Adobe Firefly"}}]},
    "microsoft": {"claim_generator_info": [{"name": "Microsoft_Responsible_AI", "version": "1.0"}],
                  "actions": [{"action": "c2pa.created", "digitalSourceType": IPTC_DST + "trainedAlgorithmicMedia",
                               "softwareAgent": {"name": "Bing Image Creator"}}]},
}


def c2pa_signed(pki: dict, mime: str, source: bytes, source_type: str = IPTC_DST + "trainedAlgorithmicMedia",
                vendor: str | None = None) -> bytes:
    """``source`` signed with c2pa-python: a ``c2pa.actions`` assertion declaring ``source_type`` (or a vendor's manifest)."""
    import c2pa

    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", pki["chain"], pki["key"], None))
    shape = C2PA_VENDOR_MANIFESTS[vendor] if vendor else {
        "claim_generator_info": [{"name": "provguard-tests", "version": "1"}],
        "actions": [{"action": "c2pa.created", "digitalSourceType": source_type}]}
    manifest = {"claim_generator_info": shape["claim_generator_info"], "title": "fixture",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": shape["actions"]}}]}
    dst = io.BytesIO()
    c2pa.Builder(json.dumps(manifest)).sign(signer, mime, io.BytesIO(source), dst)
    return dst.getvalue()
