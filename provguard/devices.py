"""The one device picker: ``auto`` means CUDA when present, else CPU (torch is imported on call)."""
from __future__ import annotations

from provguard.errors import BadArgument


def pick_device(name: str | None = "auto"):
    """A ``torch.device`` for ``name``: ``auto``/None -> CUDA when present, else CPU; ``cpu``; ``cuda[:N]``.

    Raises :class:`~provguard.errors.BadArgument` (parameter ``device``) for ``cuda`` without a visible
    CUDA device, or a name that is none of these.
    """
    import torch

    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise BadArgument(f"{{name}} must be auto, cpu or cuda (got {name!r})", "device")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BadArgument("{name} is cuda but no CUDA device is visible; use cpu or auto", "device")
    return device
