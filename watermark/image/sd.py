"""The Stable Diffusion / SDXL invisible watermark: invisible-watermark's ``dwtDct``, bit-compatible.

What ``dwtDct`` really does (read off invisible-watermark's ``imwatermark/maxDct.py``): convert the image
(handed over as if BGR) to OpenCV YUV; take the U plane cropped to multiples of 4; one-level Haar
DWT, keep LL; cut LL into 4x4 blocks in row-major order, block ``n`` carrying bit ``n mod L``; in
each block find the largest-magnitude coefficient other than ``[0, 0]`` (no DCT is applied, despite
the name) and quantise its magnitude to ``(floor(|c|/36) + 0.25 + 0.5*bit) * 36``; rebuild with the
H and V detail bands swapped (which transposes every 2x2 pixel block of U: a quirk we reproduce).
Decoding reads ``|c| mod 36 > 18`` per block and takes a vote per bit (``mean*255 > 127``).

Generators hand pixels over in different ways, so a reader tries four read-outs (uint8 | float32
YUV maths) x (BGR | RGB channel order) and keeps the best match for each known payload. The null
distribution of that maximum is not binomial (flat images decode to all zeros), so p-values come from
a table calibrated on real unwatermarked photos (``watermark/data/sd_null.json``, built by
:mod:`provguard.watermark.image.sd_calibration`): conformal p = (1 + #null >= m) / (N + 1) per payload
where the table resolves it, a fitted geometric tail beyond (:mod:`provguard.watermark.image.sd_null`),
Bonferroni over the payloads searched.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

import numpy as np
import torch

from provguard.errors import BadArgument
from provguard.imaging import color
from provguard.watermark.image import haar
from provguard.watermark.image.base import ImageDetection, ImageWatermark, check_fpr, group_by_shape
from provguard.watermark.image.sd_null import PayloadNull, at_least

QIM_STEP = 36.0  # invisible-watermark's scale for the U channel
MIN_PIXELS = 256 * 256  # invisible-watermark refuses r*c below this


def bytes_to_bits(data: bytes) -> np.ndarray:
    """MSB-first bits of ``data`` (as invisible-watermark's ``set_watermark('bytes', ...)``), uint8."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def int_to_bits(value: int, length: int) -> np.ndarray:
    """``length`` MSB-first bits of a non-negative integer, uint8."""
    return np.array([(value >> (length - 1 - i)) & 1 for i in range(length)], dtype=np.uint8)


#: payloads found in the wild (CompVis, Stability and diffusers code)
SD_PAYLOADS: dict[str, np.ndarray] = {
    "sd1": bytes_to_bits(b"StableDiffusionV1"),  # CompVis scripts/txt2img.py, 136 bits
    "sd2": bytes_to_bits(b"SDV2"),  # Stability stablediffusion scripts, 32 bits
    "sdxl": int_to_bits(0xB3EC907BB19E, 48),  # Stability generative-models and diffusers, 48 bits
}


@dataclass(frozen=True)
class PixelPath:
    """How a generator hands pixels to ``dwtDct`` and turns the result back into 8-bit pixels.

    ``dtype``: ``"u8"`` (OpenCV integer YUV, chroma offset 128) or ``"f32"`` (float YUV, offset 0.5).
    ``order``: ``"bgr"`` (RGB flipped to BGR first, as OpenCV expects) or ``"rgb"`` (RGB handed over
    unflipped). ``to_u8``: how float output becomes uint8 (``"trunc"`` = ``astype``, ``"round"``).
    """

    dtype: str
    order: str
    to_u8: str = "trunc"


#: the generator pipelines, by name
PIXEL_PATHS: dict[str, PixelPath] = {
    "compvis": PixelPath("u8", "bgr"),  # SD 1.x / 2.x scripts: uint8, RGB->BGR
    "stability": PixelPath("f32", "bgr", "trunc"),  # sgm WatermarkEmbedder: float 255*x, BGR, astype(uint8)
    "diffusers": PixelPath("f32", "rgb", "round"),  # diffusers SDXL: float RGB, no flip; PIL rounds
}
#: the four read-outs a detector tries, as (dtype, order)
READOUTS: tuple[tuple[str, str], ...] = (("u8", "bgr"), ("u8", "rgb"), ("f32", "bgr"), ("f32", "rgb"))
#: pipeline used when embedding each named payload, as its generator does
DEFAULT_PATH = {"sd1": "compvis", "sd2": "compvis", "sdxl": "stability"}


def _as_cv_order(rgb: torch.Tensor, order: str) -> torch.Tensor:
    """The array a generator hands to OpenCV: RGB flipped to BGR, or RGB as is."""
    return rgb.flip(-1) if order == "bgr" else rgb


def _work_dtype(dtype: str) -> torch.dtype:
    """pywt computes uint8 input in float64 and float32 input in float32; so do we."""
    return torch.float64 if dtype == "u8" else torch.float32


def u_plane(rgb: torch.Tensor, dtype: str, order: str) -> torch.Tensor:
    """OpenCV's U plane of uint8 RGB ``(B, H, W, 3)`` under one read-out, cropped to multiples of 4.

    Returns ``(B, H//4*4, W//4*4)`` in the precision pywt would use for that pixel type.
    """
    x = _as_cv_order(rgb[:, : rgb.shape[1] // 4 * 4, : rgb.shape[2] // 4 * 4], order)
    if dtype == "u8":
        return color.bgr_u_channel_u8(x).to(torch.float64)
    return color.bgr_u_channel_f32(x.to(torch.float32))


def _blocks(ll: torch.Tensor) -> torch.Tensor:
    """Row-major 4x4 blocks of LL (partial blocks dropped): ``(B, nblocks, 16)``."""
    b, h, w = ll.shape
    h4, w4 = h // 4 * 4, w // 4 * 4
    return ll[:, :h4, :w4].reshape(b, h4 // 4, 4, w4 // 4, 4).permute(0, 1, 3, 2, 4).reshape(b, -1, 16)


def _unblocks(blocks: torch.Tensor, ll: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_blocks`, writing into a copy of ``ll``."""
    b, h, w = ll.shape
    h4, w4 = h // 4 * 4, w // 4 * 4
    out = ll.clone()
    out[:, :h4, :w4] = blocks.reshape(b, h4 // 4, w4 // 4, 4, 4).permute(0, 1, 3, 2, 4).reshape(b, h4, w4)
    return out


def _peak(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index (1..15) and value of each block's largest-magnitude coefficient other than [0, 0]."""
    pos = blocks[..., 1:].abs().argmax(-1, keepdim=True) + 1  # first maximum, as numpy
    return pos, blocks.gather(-1, pos).squeeze(-1)


def block_bits(ll: torch.Tensor) -> torch.Tensor:
    """The bit each 4x4 LL block reads as (``|c| mod 36 > 18``): bool ``(B, nblocks)``."""
    _, val = _peak(_blocks(ll))
    return torch.remainder(val.abs(), QIM_STEP) > QIM_STEP / 2


def vote(bits: torch.Tensor, length: int) -> torch.Tensor:
    """Majority vote of block bits into a ``length``-bit message, as invisible-watermark: ``(B, L)``.

    Block ``n`` votes for bit ``n mod length``; a bit is 1 when ``mean * 255 > 127`` (so a tie is 1).
    """
    nb = bits.shape[-1]
    idx = torch.arange(nb, device=bits.device) % length
    ones = torch.zeros(bits.shape[0], length, device=bits.device).index_add_(1, idx, bits.float())
    votes = torch.bincount(idx, minlength=length).float()
    return 255 * ones > 127 * votes


def qim_blocks(ll: torch.Tensor, bits: np.ndarray) -> torch.Tensor:
    """Quantise each 4x4 block's peak of LL ``(B, h, w)`` to carry ``bits`` (block n: bit n mod L)."""
    blocks = _blocks(ll)
    pos, val = _peak(blocks)
    message = torch.as_tensor(bits, dtype=ll.dtype, device=ll.device)
    bit = message[torch.arange(blocks.shape[1], device=ll.device) % len(bits)]
    mag = (torch.div(val.abs(), QIM_STEP, rounding_mode="floor") + 0.25 + 0.5 * bit) * QIM_STEP
    return _unblocks(blocks.scatter(-1, pos, torch.where(val >= 0, mag, -mag).unsqueeze(-1)), ll)


def embed_bits(rgb: torch.Tensor, bits: np.ndarray, path: PixelPath) -> torch.Tensor:
    """Embed ``bits`` into uint8 RGB ``(B, H, W, 3)`` as ``dwtDct`` does under ``path``; uint8 RGB out."""
    x = _as_cv_order(rgb, path.order)
    work = _work_dtype(path.dtype)
    yuv = color.bgr_to_yuv_u8(x).to(work) if path.dtype == "u8" else color.bgr_to_yuv_f32(x.to(torch.float32))
    h4, w4 = yuv.shape[1] // 4 * 4, yuv.shape[2] // 4 * 4
    ca, (ch, cv, cd) = haar.dwt2(yuv[:, :h4, :w4, 1])
    new_u = haar.idwt2(qim_blocks(ca, bits), (cv, ch, cd))  # H and V swapped, as dwtDct does
    if path.dtype == "u8":  # numpy's float -> uint8 assignment: truncate, then wrap modulo 256
        new_u = (torch.trunc(new_u).to(torch.int64) & 255).to(work)
    yuv[:, :h4, :w4, 1] = new_u
    if path.dtype == "u8":
        out = color.yuv_to_bgr_u8(yuv.to(torch.int32))
    else:
        out = color.yuv_to_bgr_f32(yuv).clamp(0, 255)
        out = torch.round(out) if path.to_u8 == "round" else torch.trunc(out)
    return _as_cv_order(out, path.order).to(torch.uint8)


@lru_cache(maxsize=1)
def load_null_table() -> dict[str, Any]:
    """The calibrated null of max-of-four-read-outs bit matches, per payload (packaged JSON)."""
    text = resources.files("provguard.watermark").joinpath("data/sd_null.json").read_text()
    return json.loads(text)


@lru_cache(maxsize=1)
def null_models() -> dict[str, PayloadNull]:
    """Per payload, the packaged histogram with its stored tail fit."""
    return {name: PayloadNull(np.asarray(e["counts"], dtype=np.int64), e["tail"]["start"], e["tail"]["rate"],
                              e["tail"]["anchor"])
            for name, e in load_null_table()["payloads"].items()}


def null_summary() -> dict[str, Any]:
    """What a run card records about the null: its size, the empirical resolution and the tail per payload."""
    table = load_null_table()
    return {"views": int(table["n"]), "empirical_resolution": 1.0 / (table["n"] + 1), "model": table["model"],
            "tail": {name: {k: e["tail"][k] for k in ("anchor", "ratio", "anchor_p", "p_at_all_bits")}
                     for name, e in table["payloads"].items()}}


def conformal_p_values(null_counts: np.ndarray, matches: np.ndarray) -> np.ndarray:
    """Finite-sample p-values ``(1 + #{null >= m}) / (N + 1)`` from a histogram of null match counts
    (no tail model: the table's resolution stops at ``1 / (N + 1)``).

    ``null_counts[k]`` = how many null images matched ``k`` bits; ``matches`` any integer array.
    """
    ge = at_least(null_counts)
    m = np.clip(np.asarray(matches, dtype=np.int64), 0, len(ge) - 1)
    return (1.0 + ge[m]) / (1.0 + ge[0])


class SDWatermark(ImageWatermark):
    """Reader (and writer) of the Stable Diffusion / SDXL invisible watermark.

    ``payloads``: the named payloads ``detect`` searches (default all of ``SD_PAYLOADS``).
    No key: the mark is public. ``embed(images, payload="sdxl"|"sd1"|"sd2"|bits, pixel_path=None)``
    reproduces a generator's pipeline (default: the one its payload's generator uses).
    """

    name = "sd"
    min_size = (1, 1)  # the real constraint is on the pixel count; see check_size

    def __init__(self, payloads: Sequence[str] = tuple(SD_PAYLOADS), device=None):
        super().__init__(device)
        unknown = set(payloads) - set(SD_PAYLOADS)
        if unknown:
            raise BadArgument(f"unknown SD payload(s) {sorted(unknown)} in {{name}}; choose from {sorted(SD_PAYLOADS)}",
                              "payloads")
        self.payloads = tuple(payloads)

    def null_summary(self) -> dict[str, Any]:
        """The packaged null table behind the p-values (:func:`null_summary`)."""
        return null_summary()

    def check_size(self, image: np.ndarray) -> None:
        from provguard.errors import NotApplicable

        h, w = image.shape[:2]
        if h * w < MIN_PIXELS:
            raise NotApplicable(f"image is {w}x{h} pixels; the Stable Diffusion watermark needs at least "
                             f"{MIN_PIXELS:,} pixels (256x256), as invisible-watermark: it cannot be read here")

    def embed(self, images: Sequence[np.ndarray], payload: Any = "sdxl",
              pixel_path: str | None = None) -> list[np.ndarray]:
        payload = "sdxl" if payload is None else payload
        if isinstance(payload, str):
            if payload not in SD_PAYLOADS:
                raise BadArgument(f"unknown SD payload {payload!r} in {{name}}; choose from {sorted(SD_PAYLOADS)} or pass bits",
                                  "payload")
            bits = SD_PAYLOADS[payload]
            pixel_path = pixel_path or DEFAULT_PATH[payload]
        else:
            bits = np.asarray(payload, dtype=np.uint8)
            pixel_path = pixel_path or "compvis"
        if pixel_path not in PIXEL_PATHS:
            raise BadArgument(f"unknown pixel path {pixel_path!r} in {{name}}; choose from {sorted(PIXEL_PATHS)}", "pixel_path")
        out: list[np.ndarray | None] = [None] * len(images)
        for _, idx in group_by_shape(images).items():
            for i in idx:
                self.check_size(images[i])
            batch = torch.from_numpy(np.stack([images[i] for i in idx])).to(self.device)
            marked = embed_bits(batch, bits, PIXEL_PATHS[pixel_path]).cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = marked[j]
        return out  # type: ignore[return-value]

    def match_counts(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Per payload, the best bit-match count over the four read-outs and which read-out gave it.

        Returns ``{payload: int array (N,)}`` plus ``{payload + ":readout": int array (N,)}``
        (index into :data:`READOUTS`). Images must pass :meth:`check_size`.
        """
        n = len(images)
        result = {}
        for name in self.payloads:
            result[name] = np.zeros(n, dtype=np.int64)
            result[name + ":readout"] = np.zeros(n, dtype=np.int64)
        for _, idx in group_by_shape(images).items():
            batch = np.stack([images[i] for i in idx])
            bits = self._readout_bits(batch)  # (b, 4, nblocks)
            for name in self.payloads:
                expected = torch.as_tensor(SD_PAYLOADS[name], dtype=torch.bool, device=bits.device)
                decoded = vote(bits.flatten(0, 1), len(expected)).unflatten(0, bits.shape[:2])
                best, which = (decoded == expected).sum(-1).max(-1)  # over the four read-outs
                result[name][idx] = best.cpu().numpy()
                result[name + ":readout"][idx] = which.cpu().numpy()
        return result

    def _readout_bits(self, batch: np.ndarray) -> torch.Tensor:
        """Block bits ``(b, 4, nblocks)`` of uint8 RGB ``(b, H, W, 3)`` under every read-out.

        On CPU a fused numba kernel (:mod:`~provguard.watermark.image.sd_kernel`); on CUDA the batched
        torch path. Both are bit-identical (tested).
        """
        if self.device.type == "cpu":
            from provguard.watermark.image.sd_kernel import block_bits_all

            return torch.from_numpy(block_bits_all(np.ascontiguousarray(batch))).bool()
        rgb = torch.from_numpy(batch).to(self.device)
        return torch.stack([block_bits(haar.ll_band(u_plane(rgb, dtype, order))) for dtype, order in READOUTS], 1)

    def detect(self, images: Sequence[np.ndarray], fpr: float = 1e-3) -> list[ImageDetection]:
        fpr = check_fpr(fpr)
        for img in images:
            self.check_readable(img)
        counts = self.match_counts(images)
        table, models = load_null_table(), null_models()
        p_by_payload = {name: models[name].p_values(counts[name]) for name in self.payloads}
        results = []
        for i in range(len(images)):
            # smallest p-value; among payloads at the same p (e.g. all at the table's floor) the one
            # with the larger fraction of bits matched (an SD2 mark also lifts sd1's count)
            best = min(self.payloads, key=lambda name: (p_by_payload[name][i],
                                                        -counts[name][i] / len(SD_PAYLOADS[name])))
            p = min(1.0, len(self.payloads) * float(p_by_payload[best][i]))
            detected = p <= fpr
            results.append(ImageDetection(
                method=self.name, detected=detected, p_value=p, statistic=float(counts[best][i]),
                bits_matched=int(counts[best][i]), bits_total=int(len(SD_PAYLOADS[best])),
                payload=best if detected else None,
                detail={"best_payload": best,
                        "readout": "-".join(READOUTS[int(counts[best + ":readout"][i])]),
                        "matches": {name: int(counts[name][i]) for name in self.payloads},
                        "null_size": int(table["n"])}))
        return results
