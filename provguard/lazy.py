"""Lazy public APIs for packages (PEP 562): a name loads its module on first use, so importing the
package itself loads nothing heavy (no torch, scipy or onnxruntime)."""
from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose public ``exports`` map each name to the module
    that defines it. Use as ``__getattr__, __dir__ = lazy_exports(__name__, {...})``."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
