"""The files tests/metadata_formats.py builds, read by a real peer: sd-parsers (d3x-at) must recognise the
same tool provguard reports and return the prompt that was embedded. This checks the writers (bit order,
column-major stealth layout, UserComment prefix, chunk names) against an implementation that is not ours,
so provguard's own tests run on files as the tools' readers expect them."""
from __future__ import annotations

import importlib.util
import io

import pytest

from provguard.detectors.metadata import scan_metadata
from tests import metadata_formats as F
from conftest import require_asset

require_asset(importlib.util.find_spec("sd_parsers") is not None, "sd-parsers (the [test] extra)")
import sd_parsers  # noqa: E402


@pytest.fixture(scope="module")
def peer():
    from sd_parsers.extractors import Eagerness

    return sd_parsers.ParserManager(eagerness=Eagerness.EAGER)  # EAGER: also read stealth alpha data


CASES = {
    "A1111 PNG parameters": (lambda: F.png({"parameters": F.A1111}), "AUTOMATIC1111", "png-text:automatic1111",
                             "a photo of a cat, highly detailed"),
    "A1111 JPEG UserComment UTF-16 BE": (lambda: F.encode("JPEG", exif=F.exif(exif_ifd={0x9286: F.user_comment(F.A1111)})),
                                         "AUTOMATIC1111", "exif:automatic1111", "a photo of a cat, highly detailed"),
    "A1111 WebP UserComment UTF-16 BE": (lambda: F.encode("WEBP", exif=F.exif(exif_ifd={0x9286: F.user_comment(F.A1111)})),
                                         "AUTOMATIC1111", "exif:automatic1111", "a photo of a cat, highly detailed"),
    "A1111 stealth_pngcomp, 256 rows": (lambda: F.stealth_png(F.A1111, "alpha", True), "AUTOMATIC1111",
                                        "stealth:automatic1111", "a photo of a cat, highly detailed"),
    "A1111 stealth_pngcomp, 64 rows (spans columns)": (lambda: F.stealth_png(F.A1111, "alpha", True, size=64), "AUTOMATIC1111",
                                                       "stealth:automatic1111", "a photo of a cat, highly detailed"),
    "NovelAI stealth JSON": (lambda: F.stealth_png(F.NOVELAI_STEALTH, "alpha", True), "NovelAI", "stealth:novelai", "1girl, solo"),
    "NovelAI PNG chunks": (lambda: F.png({"Software": "NovelAI", "Source": "Stable Diffusion XL C1E1DE52", "Description": "1girl",
                                          "Comment": F.NAI_COMMENT}), "NovelAI", "png-text:novelai", "1girl"),
    "Fooocus PNG JSON": (lambda: F.png({"parameters": F.FOOOCUS_JSON, "fooocus_scheme": "fooocus"}), "Fooocus",
                         "png-text:fooocus", "a cat"),
    "ComfyUI PNG": (lambda: F.png({"prompt": F.COMFY_PROMPT, "workflow": F.COMFY_WORKFLOW}), "ComfyUI", "png-text:comfyui", None),
    "InvokeAI 3 invokeai_metadata": (lambda: F.png({"invokeai_metadata": F.INVOKE3}), "InvokeAI", "png-text:invokeai", "a cat"),
    "InvokeAI Dream": (lambda: F.png({"Dream": '"a cat [blurry]" -s 50 -S 42 -W 512 -H 512 -C 7.5 -A k_lms'}), "InvokeAI",
                       "png-text:invokeai", "a cat"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_peer_reads_what_we_build_and_agrees_on_the_tool(peer, case):
    build, generator, reason, prompt = CASES[case]
    data = build()
    info = peer.parse(io.BytesIO(data))
    assert info is not None, f"sd-parsers could not read {case}"
    assert info.generator.value == generator
    if prompt is not None:
        assert [p.value for p in info.prompts][0] == prompt
    assert reason in [e.reason for e in scan_metadata(data)]
