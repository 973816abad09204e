"""Which generator tool wrote this metadata text: keys and values as each tool writes them.

Input is a flat ``key -> text`` mapping: PNG text chunks as they are, or EXIF/XMP/stealth fields
mapped onto the same names by the caller (:mod:`provguard.detectors.metadata`). Output is
``[(generator, key)]``: the tool and the field that showed it. Every rule below names a format a
tool actually writes (sources: the tools' own writers, and the readers in sd-parsers and
stable-diffusion-prompt-reader):

=====================  ====================================================================
generator              recognised by
=====================  ====================================================================
``automatic1111``      ``parameters`` text with A1111's settings line (``Steps: N, Sampler: ...``)
                       (also Forge, SD.Next and the A1111-compatible writers)
``fooocus``            ``parameters`` JSON with Fooocus' keys or ``version: Fooocus ...``;
                       ``fooocus_scheme`` chunk / MakerNote ``fooocus``|``a1111``; A1111-style
                       text with ``Version: Fooocus ...``
``civitai``            A1111-style text with ``Civitai resources:`` / ``Civitai metadata:``
``swarmui``            JSON with ``sui_image_params`` (``parameters``, UserComment, EXIF Model)
``comfyui``            ``prompt`` JSON of ``{id: {class_type, inputs}}`` nodes or ``workflow`` JSON
                       with ``nodes``; EXIF ``prompt:{...}`` / ``workflow:{...}`` (ComfyUI's WebP)
``invokeai``           ``invokeai_metadata``, ``invokeai_graph``, ``sd-metadata``, ``Dream``
``nmkd``               ``Nmkdiffusers``, ``GenerationInfo``, ``GenerationInfoJson``
``easydiffusion``      ``use_stable_diffusion_model`` / ``Stable Diffusion model`` keys or JSON
``novelai``            ``Software`` = NovelAI, ``Source`` = NovelAI..., or NovelAI's ``Comment`` JSON
``midjourney``         ``Job ID: <uuid>`` in ``Description``/``Comment``
``dall-e``             UserComment ``Made with OpenAI Labs``; MakerNote ``OpenAI--ImageGeneration--``
``google``             ``Credit`` = ``Made with Google AI``
software names         ``Software`` / CreatorTool naming a known generator (:data:`KNOWN_SOFTWARE`)
=====================  ====================================================================

Only the first 64 KiB of a value is searched, and JSON is parsed only for values that start with
``{`` (capped at :data:`MAX_JSON` characters), so a hostile 1 MB chunk costs no more than a small one.
"""
from __future__ import annotations

import json
import re

MAX_JSON = 1 << 20
_HEAD = 65536
_A1111 = re.compile(r"Steps:\s*\d+.*(Sampler|CFG scale|Seed):", re.S)
_JOB_ID = re.compile(r"Job ID:\s*[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_FOOOCUS_KEYS = frozenset({"full_prompt", "full_negative_prompt", "base_model", "sharpness", "adm_guidance"})
_EASYDIFF_KEYS = ("use_stable_diffusion_model", "Stable Diffusion model")
_NAI_COMMENT_KEYS = frozenset({"uc", "sampler", "steps", "scale", "n_samples", "request_type", "noise_schedule"})
#: ``(pattern, generator)``: a Software/CreatorTool/OriginatingProgram value naming an image generator.
#: Names only: ordinary words that tools also use ("Imagen" is Spanish for "image") are left out.
KNOWN_SOFTWARE = (
    (r"^NovelAI", "novelai"), (r"^Fooocus", "fooocus"), (r"\bComfyUI\b", "comfyui"), (r"\bInvokeAI\b", "invokeai"),
    (r"^Draw Things", "drawthings"), (r"\bDiffusionBee\b", "diffusionbee"), (r"\bMidjourney\b", "midjourney"),
    (r"\bDALL[-\u00b7 ]?E\b", "dall-e"), (r"\bAdobe Firefly\b", "adobe-firefly"), (r"\bStable Diffusion\b", "stable-diffusion"),
    (r"\bstable-diffusion-webui\b|\bAUTOMATIC1111\b", "automatic1111"), (r"\bSwarmUI\b", "swarmui"),
    (r"\bEasy Diffusion\b", "easydiffusion"), (r"\bNMKD\b", "nmkd"),
    (r"\bBing Image Creator\b|\bMicrosoft Designer\b", "microsoft"), (r"\bLeonardo\.?Ai\b", "leonardo"),
    (r"\bChatGPT\b|\bOpenAI\b", "openai"))
# one alternation, one search per value; group i names KNOWN_SOFTWARE[i]
_SOFTWARE = re.compile("|".join(f"(?P<g{i}>{p})" for i, (p, _) in enumerate(KNOWN_SOFTWARE)), re.I)


def json_object(text: str | None) -> dict | None:
    """``text`` parsed as a JSON object (``None`` if it is not one, or longer than :data:`MAX_JSON`)."""
    if not text or len(text) > MAX_JSON or not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def software_generator(value: str | None) -> str | None:
    """The generator a Software/CreatorTool string names, if it names one of :data:`KNOWN_SOFTWARE`."""
    if not value:
        return None
    m = _SOFTWARE.search(value.strip()[:256])
    return KNOWN_SOFTWARE[int(m.lastgroup[1:])][1] if m else None


def _is_comfy_prompt(obj: dict | None) -> bool:
    return bool(obj) and any(isinstance(v, dict) and "class_type" in v for v in list(obj.values())[:64])


def _is_comfy_workflow(obj: dict | None) -> bool:
    return bool(obj) and isinstance(obj.get("nodes"), list)


def _parameters(text: dict[str, str]) -> list[tuple[str, str]]:
    """The ``parameters`` family: A1111 text and the tools that reuse the field."""
    value = text.get("parameters", "")
    if not value:
        return []
    obj = json_object(value)
    if obj is not None:
        if "sui_image_params" in obj:
            return [("swarmui", "parameters")]
        if _FOOOCUS_KEYS & obj.keys() or str(obj.get("version", "")).startswith("Fooocus"):
            return [("fooocus", "parameters")]
        if any(k in obj for k in _EASYDIFF_KEYS):
            return [("easydiffusion", "parameters")]
        return []
    head = value[:_HEAD]
    if not _A1111.search(head):
        return []
    if "Version: Fooocus" in head or text.get("fooocus_scheme") == "a1111":
        return [("fooocus", "parameters")]
    if "Civitai resources:" in head or "Civitai metadata:" in head:
        return [("civitai", "parameters")]
    return [("automatic1111", "parameters")]


def _comfy(text: dict[str, str]) -> list[tuple[str, str]]:
    for key in ("prompt", "workflow"):
        raw = text.get(key, "")
        if raw.startswith(key + ":"):  # ComfyUI's WebP writer: EXIF Model "prompt:{...}", Make "workflow:{...}"
            raw = raw[len(key) + 1:]
        obj = json_object(raw)
        if (key == "prompt" and _is_comfy_prompt(obj)) or (key == "workflow" and _is_comfy_workflow(obj)):
            return [("comfyui", key)]
    return []


def _novelai(text: dict[str, str]) -> list[tuple[str, str]]:
    if text.get("Software", "").strip().startswith("NovelAI"):
        return [("novelai", "Software")]
    if text.get("Source", "").strip().startswith("NovelAI"):
        return [("novelai", "Source")]
    comment = json_object(text.get("Comment"))
    if comment is not None and len(_NAI_COMMENT_KEYS & comment.keys()) >= 4:
        return [("novelai", "Comment")]
    return []


def _by_key(text: dict[str, str]) -> list[tuple[str, str]]:
    """Tools recognised by a chunk name alone (names nobody else writes)."""
    found = []
    for gen, keys in (("invokeai", ("invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream")),
                      ("nmkd", ("Nmkdiffusers", "GenerationInfo", "GenerationInfoJson")),
                      ("easydiffusion", _EASYDIFF_KEYS)):
        key = next((k for k in keys if text.get(k)), None)
        if key:
            found.append((gen, key))
    if text.get("fooocus_scheme") in ("fooocus", "a1111"):
        found.append(("fooocus", "fooocus_scheme"))
    return found


def _declarations(text: dict[str, str]) -> list[tuple[str, str]]:
    """Short declarations: Midjourney job ids, DALL-E 2 exports, Google's credit line, generator Software names."""
    found = []
    if any(_JOB_ID.search(text.get(k, "")[:_HEAD]) for k in ("Description", "Comment")):
        found.append(("midjourney", "Description"))
    if text.get("UserComment", "").strip().startswith("Made with OpenAI Labs"):
        found.append(("dall-e", "UserComment"))
    if text.get("MakerNote", "").startswith("OpenAI--ImageGeneration--"):
        found.append(("dall-e", "MakerNote"))
    if text.get("Credit", "").strip() == "Made with Google AI":
        found.append(("google", "Credit"))
    sw = software_generator(text.get("Software"))
    if sw:
        found.append((sw, "Software"))
    return found


def generator_from_text(text: dict[str, str]) -> list[tuple[str, str]]:
    """``[(generator, key)]`` recognised in ``text`` (deduplicated by generator, first key kept)."""
    if not text:
        return []
    seen, out = set(), []
    for gen, key in _parameters(text) + _comfy(text) + _by_key(text) + _novelai(text) + _declarations(text):
        if gen not in seen:
            seen.add(gen)
            out.append((gen, key))
    return out
