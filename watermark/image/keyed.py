"""provguard's own keyed image watermark: tiled spread spectrum with a key-defined sync template.

Why this design (see the README for the measurements):

* **Luma, mid-low frequencies.** Chroma subsampling (JPEG 4:2:0, WebP) is what kills the SD
  watermark; this one lives in luma, in chips of ``CELL`` pixels smoothed by a Gaussian, i.e. below
  ~0.15 cycles/pixel where JPEG q50, blur and downscaling leave energy.
* **Tiling makes geometry cheap.** The same ``TILE`` x ``TILE`` pattern repeats over the image.
  A shift or crop only cyclically shifts the folded tile, found by one FFT cross-correlation with
  the sync chips; a rescale changes the period, read off the residual's autocorrelation and refined
  by the sync peak. No learned model, no weights, a few ms per image on a CPU.
* **Exact p-values by construction.** The key (a hash-based PRF, identical on every device) assigns
  each chip to the sync template, to one of ``REF_BITS`` reference bits, or to one of ``PAYLOAD_BITS``
  payload bits (48 data + CRC-16), and draws its sign. Alignment (period, shift) is chosen from the
  sync chips only, so for an image not marked with this key each decoded reference bit matches its
  key-drawn value with probability exactly 1/2, independently: the number of matches is
  Binomial(64, 1/2) and ``p = P(Bin >= matches)`` is exact (ties count as misses, so it is
  conservative). The null is "the image is independent of the key"; the benchmark checks it on real
  unwatermarked photos.
* **Scale with the image.** The tile is ``TILE * k`` pixels with ``k = round(min(H, W) / 512)``, so
  the mark has 4-pixel chips again when a large photo is downscaled to ~512 px, as scrapers do.

Shapes: images are uint8 RGB ``(H, W, 3)``; the folded tile is ``(TILE, TILE)``; the chip grid is
``(GRID, GRID)`` with ``GRID = TILE // CELL``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np
import torch
from scipy.stats import binom

from provguard.errors import BadArgument
from provguard.imaging.color import luma
from provguard.keys import SecretKey, as_key
from provguard.watermark import prf
from provguard.watermark.image import signal
from provguard.watermark.image.base import (ImageDetection, ImageWatermark, _check_min, check_fpr,
                                            group_by_shape)

TILE = 128  # pattern period at scale k = 1, pixels
CELL = 4  # chip size at k = 1, pixels
GRID = TILE // CELL  # chips per tile side
CHIP_SIGMA = 1.0  # Gaussian smoothing of the chip pattern at k = 1, pixels
REF_BITS = 64
DATA_BITS = 48
CRC_BITS = 16
PAYLOAD_BITS = DATA_BITS + CRC_BITS
CHIPS_PER_BIT = 5
SYNC_CHIPS = GRID * GRID - (REF_BITS + PAYLOAD_BITS) * CHIPS_PER_BIT  # 384
HIGHPASS_SIGMA = 2.0  # detector residual filter at the base scale, pixels
NORM_SIGMA = 4.0  # local-contrast normalisation window, pixels
NORM_FLOOR = 1.0  # in 0..255 units: keeps flat regions from dividing by ~0
RESIDUAL_CLIP = 1.5  # normalised residuals are clipped to +-this: robust to heavy-tailed texture
CHASE_FLIPS = 8  # payload soft decoding: try flipping subsets of the 8 least reliable bits
MIN_DETECT_SIDE = 64
SCALE_REFINEMENT = (-0.015, -0.01, -0.005, 0.0, 0.005, 0.01, 0.015)


def crc16(bits: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of a bit string, as 16 MSB-first bits."""
    reg = 0xFFFF
    for b in bits.astype(int):
        top = (reg >> 15) & 1
        reg = ((reg << 1) & 0xFFFF) ^ (0x1021 if top ^ b else 0)
    return np.array([(reg >> (15 - i)) & 1 for i in range(16)], dtype=np.uint8)


def payload_to_bits(payload: Any) -> np.ndarray:
    """48 data bits from an int, hex text (``"0xC0FFEE"``/``"c0ffee"``), bytes (<= 6) or ``None`` (0)."""
    if payload is None:
        value = 0
    elif isinstance(payload, (bytes, bytearray)):
        if len(payload) > DATA_BITS // 8:
            raise BadArgument(f"{{name}} is {len(payload)} bytes; the provguard watermark carries at most {DATA_BITS // 8}",
                              "payload")
        value = int.from_bytes(bytes(payload), "big")
    elif isinstance(payload, str):
        try:
            value = int(payload, 16)
        except ValueError:
            raise BadArgument(f"{{name}} {payload!r} is not hexadecimal: pass e.g. 0xC0FFEE (at most {DATA_BITS} bits)",
                              "payload") from None
    else:
        value = int(payload)
    if not 0 <= value < (1 << DATA_BITS):
        raise BadArgument(f"{{name}} {value:#x} does not fit in {DATA_BITS} bits", "payload")
    return np.array([(value >> (DATA_BITS - 1 - i)) & 1 for i in range(DATA_BITS)], dtype=np.uint8)


def chase_decode(soft: np.ndarray, flips: int = CHASE_FLIPS) -> tuple[np.ndarray, int | None]:
    """Soft-decision decoding of a data+CRC word (Chase-II with the CRC as the only check).

    ``soft``: ``(PAYLOAD_BITS,)`` correlations (sign = bit, magnitude = reliability). Tries the hard
    decision, then every subset of the ``flips`` least reliable bits in order of total reliability
    lost, and returns ``(word, number_of_bits_flipped)`` for the first word whose CRC checks, or
    ``(hard_word, None)``. A wrong word passes by chance with probability about 2**flips / 2**16, so
    the payload is only reported when the zero-bit test has already detected the mark.
    """
    hard = (soft > 0).astype(np.uint8)
    weakest = np.argsort(np.abs(soft))[:flips]
    masks = np.array([[(m >> j) & 1 for j in range(flips)] for m in range(1 << flips)], dtype=bool)
    cost = masks @ np.abs(soft[weakest])
    for m in np.argsort(cost, kind="stable"):
        word = hard.copy()
        word[weakest[masks[m]]] ^= 1
        if np.array_equal(crc16(word[:DATA_BITS]), word[DATA_BITS:]):
            return word, int(masks[m].sum())
    return hard, None


def bits_to_hex(bits: np.ndarray) -> str:
    return f"{int(''.join(map(str, bits.astype(int))), 2):0{len(bits) // 4}x}"


@dataclass(frozen=True)
class ChipLayout:
    """What a key decides: chip roles, chip signs and the reference bits (all flat over GRID*GRID)."""

    sync: np.ndarray  # (SYNC_CHIPS,) chip indices
    ref: np.ndarray  # (REF_BITS, CHIPS_PER_BIT) chip indices
    payload: np.ndarray  # (PAYLOAD_BITS, CHIPS_PER_BIT) chip indices
    sign: np.ndarray  # (GRID*GRID,) float32 in {-1, +1}
    ref_bits: np.ndarray  # (REF_BITS,) uint8

    @classmethod
    def from_key(cls, key: SecretKey) -> "ChipLayout":
        perm = prf.permutation(prf.derive_seed(key, "provguard-image/v1/layout"), GRID * GRID)
        n_ref = REF_BITS * CHIPS_PER_BIT
        return cls(
            sync=perm[:SYNC_CHIPS],
            ref=perm[SYNC_CHIPS:SYNC_CHIPS + n_ref].reshape(REF_BITS, CHIPS_PER_BIT),
            payload=perm[SYNC_CHIPS + n_ref:].reshape(PAYLOAD_BITS, CHIPS_PER_BIT),
            sign=prf.signs(prf.derive_seed(key, "provguard-image/v1/signs"), GRID * GRID),
            ref_bits=prf.bits(prf.derive_seed(key, "provguard-image/v1/ref"), REF_BITS),
        )

    def chip_values(self, payload_bits: np.ndarray) -> np.ndarray:
        """Chip grid ``(GRID, GRID)`` in {-1, +1} for a 64-bit payload word (data + CRC)."""
        values = self.sign.copy()
        values[self.ref] *= (2.0 * self.ref_bits - 1.0)[:, None]
        values[self.payload] *= (2.0 * payload_bits.astype(np.float32) - 1.0)[:, None]
        return values.reshape(GRID, GRID)


def render_tile(chips: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Smooth periodic pattern of period ``TILE*k`` from a chip grid ``(..., GRID, GRID)``, unit RMS."""
    tile = chips.repeat_interleave(CELL * k, -2).repeat_interleave(CELL * k, -1)
    tile = signal.gaussian_blur(tile, CHIP_SIGMA * k, mode="circular")
    return tile / tile.pow(2).mean((-2, -1), keepdim=True).sqrt()


def scale_factor(height: int, width: int) -> int:
    """Tile scale ``k``: 1 up to ~768 px, then grows so the mark survives downscaling to ~512 px."""
    return max(1, round(min(height, width) / 512))


def normalised_residual(y: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """High-passed, locally contrast-normalised and clipped luma residual ``(..., H, W)``."""
    r = signal.highpass(y, HIGHPASS_SIGMA * k)
    return (r / (signal.local_rms(r, NORM_SIGMA * k) + NORM_FLOOR)).clamp_(-RESIDUAL_CLIP, RESIDUAL_CLIP)


class ProvguardWatermark(ImageWatermark):
    """The keyed provguard image watermark (zero-bit detection + 48-bit payload with CRC-16).

    ``target_psnr``: embedding strength as the PSNR (dB) of the marked image against the original
    before 8-bit rounding (higher = weaker). ``mask``: 0 spreads the mark evenly, 1 puts it
    where the image has texture (same PSNR).
    """

    name = "provguard"
    min_size = (TILE, TILE)

    def __init__(self, key: SecretKey | bytes | str, target_psnr: float = 41.0, mask: float = 0.0,
                 device=None):
        super().__init__(device)
        self.key = as_key(key)
        self.target_psnr = float(target_psnr)
        self.mask = float(mask)

    def __repr__(self) -> str:
        return f"ProvguardWatermark(key=<hidden>, target_psnr={self.target_psnr}, mask={self.mask})"

    @cached_property
    def layout(self) -> ChipLayout:
        return ChipLayout.from_key(self.key)

    @cached_property
    def _sync_tile(self) -> torch.Tensor:
        """Rendered sync-only pattern ``(TILE, TILE)`` (other chips zero) for the alignment search."""
        chips = np.zeros(GRID * GRID, dtype=np.float32)
        chips[self.layout.sync] = self.layout.sign[self.layout.sync]
        return render_tile(torch.from_numpy(chips.reshape(GRID, GRID)).to(self.device))

    # ------------------------------------------------------------------ embedding
    def embed(self, images: Sequence[np.ndarray], payload: Any = None) -> list[np.ndarray]:
        data = payload_to_bits(payload)
        word = np.concatenate([data, crc16(data)])
        chips = torch.from_numpy(self.layout.chip_values(word)).to(self.device)
        out: list[np.ndarray | None] = [None] * len(images)
        for (h, w, _), idx in group_by_shape(images).items():
            for i in idx:
                self.check_size(images[i])
            k = scale_factor(h, w)
            tile = render_tile(chips, k)
            pattern = tile.repeat(math.ceil(h / tile.shape[0]), math.ceil(w / tile.shape[1]))[:h, :w]
            batch = torch.from_numpy(np.stack([images[i] for i in idx])).to(self.device).to(torch.float32)
            delta = pattern * self._mask(luma(batch), k)  # (B, H, W), unit-ish RMS
            mse = 255.0 ** 2 / 10 ** (self.target_psnr / 10)
            delta = delta * math.sqrt(mse) / delta.pow(2).mean((-2, -1), keepdim=True).sqrt()
            marked = (batch + delta.unsqueeze(-1)).round_().clamp_(0, 255).to(torch.uint8).cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = marked[j]
        return out  # type: ignore[return-value]

    def _mask(self, y: torch.Tensor, k: int) -> torch.Tensor:
        """Texture mask ``(B, H, W)`` >= 0: local contrast^mask, normalised to unit RMS per image."""
        if self.mask == 0:
            return torch.ones_like(y)
        activity = signal.local_rms(signal.highpass(y, 2.0 * k), 4.0 * k) + 2.0
        m = activity.pow(self.mask)
        m = m / m.pow(2).mean((-2, -1), keepdim=True).sqrt()
        return m.clamp(0.25, 4.0)

    # ------------------------------------------------------------------ detection
    def check_readable(self, image: np.ndarray) -> None:
        _check_min(image, (MIN_DETECT_SIDE, MIN_DETECT_SIDE), "the provguard watermark is read from at least")

    def detect(self, images: Sequence[np.ndarray], fpr: float = 1e-3) -> list[ImageDetection]:
        fpr = check_fpr(fpr)
        results = []
        for img in images:
            self.check_readable(img)
            y = luma(torch.tensor(img, device=self.device))  # a copy: inputs may be read-only
            results.append(self._detect_one(y, fpr))
        return results

    @staticmethod
    def _period_candidates(residual: torch.Tensor) -> list[float]:
        """Tile periods (pixels, at the residual's size) worth trying: autocorrelation peaks + defaults."""
        h, w = residual.shape
        max_lag = min(h, w) // 2
        candidates = {float(TILE * scale_factor(h, w)), float(TILE)}
        if max_lag > 40:
            prof = signal.autocorrelation_profile(residual, max_lag).cpu().numpy()
            lo = 40
            seg = prof[lo:max_lag]
            peaks = [lo + i for i in range(1, len(seg) - 1) if seg[i] >= seg[i - 1] and seg[i] >= seg[i + 1]]
            for p in sorted(peaks, key=lambda i: -prof[i])[:2]:
                # prefer the fundamental when a lag near p/2 or p/3 is nearly as strong
                for div in (3, 2):
                    q = round(p / div)
                    if q >= lo and prof[q - 1:q + 2].max() >= 0.6 * prof[p]:
                        p = q - 1 + int(np.argmax(prof[q - 1:q + 2]))
                        break
                a, b, c = prof[p - 1], prof[p], prof[p + 1]
                denom = a - 2 * b + c
                candidates.add(float(p + (0.5 * (a - c) / denom if denom < 0 else 0.0)))
        return sorted(candidates)

    @staticmethod
    def _fold_at(residual: torch.Tensor, period: float) -> torch.Tensor:
        """``residual`` resampled so the period becomes ``TILE``, then folded: ``(TILE, TILE)``."""
        scaled = signal.resize(residual, TILE / period) if abs(period - TILE) > 1e-6 else residual
        return signal.fold(scaled, TILE)

    def _try_period(self, residual: torch.Tensor, period: float) -> tuple[float, float, torch.Tensor, int, int]:
        """``(sync_z, period, folded_tile, dy, dx)`` for one candidate period (z = -inf if too small)."""
        if min(residual.shape) * TILE / period < MIN_DETECT_SIDE / 2:
            return (-math.inf, period, torch.zeros(TILE, TILE, device=residual.device), 0, 0)
        folded = self._fold_at(residual, period)
        z, dy, dx = self._align(folded)
        return z, period, folded, dy, dx

    def _align(self, folded: torch.Tensor) -> tuple[float, int, int]:
        """Sync-peak strength (z-score over all shifts) and the shift ``(dy, dx)`` it points to."""
        corr = signal.circular_xcorr(folded, self._sync_tile)
        flat = corr.flatten()
        best = int(flat.argmax())
        z = float((flat[best] - flat.mean()) / flat.std().clamp_min(1e-12))
        return z, best // TILE, best % TILE

    def _detect_one(self, y: torch.Tensor, fpr: float) -> ImageDetection:
        # 1. pick period and shift using the sync chips only (keeps the reference-bit null exact)
        residual = normalised_residual(y)
        best = max((self._try_period(residual, p) for p in self._period_candidates(residual)), key=lambda t: t[0])
        for rel in SCALE_REFINEMENT:  # refine only the best candidate
            if rel:
                best = max(best, self._try_period(residual, best[1] * (1 + rel)), key=lambda t: t[0])
        sync_z, period, folded, dy, dx = best
        # 2. read chips: matched filter (same smoothing as the embedder), pooled per cell
        aligned = torch.roll(folded, shifts=(-dy, -dx), dims=(0, 1))
        smooth = signal.gaussian_blur(aligned, CHIP_SIGMA, mode="circular")
        chips = smooth.reshape(GRID, CELL, GRID, CELL).sum((1, 3)).flatten().cpu().numpy().astype(np.float64)
        lay = self.layout
        soft = chips * lay.sign
        ref_soft = soft[lay.ref].sum(1)
        pay_soft = soft[lay.payload].sum(1)
        # 3. exact zero-bit test on the reference bits (ties count as misses)
        ref_read = np.where(ref_soft > 0, 1, np.where(ref_soft < 0, 0, -1))
        matches = int((ref_read == lay.ref_bits).sum())
        p_value = float(binom.sf(matches - 1, REF_BITS, 0.5))
        detected = p_value <= fpr
        # 4. payload (data + CRC)
        word, flipped = chase_decode(pay_soft) if detected else ((pay_soft > 0).astype(np.uint8), None)
        crc_ok = flipped is not None
        return ImageDetection(
            method=self.name, detected=detected, p_value=p_value, statistic=float(matches),
            bits_matched=matches, bits_total=REF_BITS,
            payload=bits_to_hex(word[:DATA_BITS]) if detected and crc_ok else None,
            detail={"sync_z": round(sync_z, 3), "period_px": round(float(period), 3),
                    "scale": round(TILE / float(period), 5), "shift": [int(dy), int(dx)],
                    "payload_crc_ok": crc_ok, "payload_bits_corrected": flipped})
