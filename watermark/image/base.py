"""The interface every image watermark implements, and the result it returns.

Images travel as ``uint8`` RGB numpy arrays of shape ``(H, W, 3)`` (see
:func:`provguard.imaging.io.load_image`, which converts every other mode). Methods batch
same-sized images into one tensor of shape ``(B, H, W, 3)`` and run on CUDA when present.
"""
from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from provguard.devices import pick_device
from provguard.errors import BadArgument


@dataclass
class ImageDetection:
    """What a detector says about one image.

    ``p_value`` is P(statistic >= observed | image not watermarked), exact or finite-sample valid as
    the method documents; ``detected`` is ``p_value <= fpr`` for the FPR the caller chose.
    ``bits_matched``/``bits_total`` count the bits compared with the expected ones (``None`` where a
    method has no bits). ``payload`` is the decoded payload (hex) or the name of a recognised one.
    """

    method: str
    detected: bool
    p_value: float
    statistic: float
    bits_matched: int | None = None
    bits_total: int | None = None
    payload: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ImageWatermark(abc.ABC):
    """Embed a mark into a batch of images; detect it with a p-value under "not watermarked"."""

    #: registry name, e.g. ``"sd"`` or ``"provguard"``
    name: str = ""
    #: smallest image (height, width) the method can embed into
    min_size: tuple[int, int] = (1, 1)

    def __init__(self, device: str | torch.device | None = None):
        self.device = torch.device(device) if device is not None else pick_device()

    @abc.abstractmethod
    def embed(self, images: Sequence[np.ndarray], payload: Any = None) -> list[np.ndarray]:
        """Return watermarked copies of ``images`` (each ``uint8 (H, W, 3)``), same sizes."""

    @abc.abstractmethod
    def detect(self, images: Sequence[np.ndarray], fpr: float = 1e-3) -> list[ImageDetection]:
        """One :class:`ImageDetection` per image, deciding at false-positive rate ``fpr``."""

    def check_size(self, image: np.ndarray) -> None:
        """Raise :class:`~provguard.errors.NotApplicable` (an ``InputError``) when ``image`` is too small."""
        _check_min(image, self.min_size, f"the {self.name!r} watermark needs at least")

    def null_summary(self) -> dict[str, Any] | None:
        """What a run card records about the null behind this method's p-values (None: they are exact
        by construction, nothing to record)."""
        return None

    def check_readable(self, image: np.ndarray) -> None:
        """Raise :class:`~provguard.errors.InputError` when ``image`` is too small to detect in
        (defaults to :meth:`check_size`)."""
        self.check_size(image)


def _check_min(image: np.ndarray, min_size: tuple[int, int], what: str) -> None:
    from provguard.errors import NotApplicable

    h, w = image.shape[:2]
    if h < min_size[0] or w < min_size[1]:
        raise NotApplicable(f"image is {w}x{h} pixels; {what} {min_size[1]}x{min_size[0]}: "
                            "upscale it or use another method")


def check_fpr(fpr: float) -> float:
    """Validate a false-positive rate in (0, 1) (:class:`~provguard.errors.BadArgument` naming ``fpr``)."""
    if not 0.0 < float(fpr) < 1.0:
        raise BadArgument(f"{{name}} must be in (0, 1), got {fpr}: e.g. 1e-3 for one false alarm in a thousand", "fpr")
    return float(fpr)


def group_by_shape(images: Sequence[np.ndarray]) -> dict[tuple[int, ...], list[int]]:
    """Indices of ``images`` grouped by array shape, so each group stacks into one batch tensor."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(images):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"image {i}: expected uint8 (H, W, 3) RGB, got {img.dtype} {img.shape}; "
                             "use provguard.imaging.io.load_image to convert")
        groups.setdefault(img.shape, []).append(i)
    return groups
