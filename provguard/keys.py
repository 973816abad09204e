"""Watermark keys: resolved from an option, an environment variable or a key file; never printed.

A key is arbitrary bytes. The CLI accepts ``--key`` (text), ``$PROVGUARD_KEY`` or ``--key-file PATH``
(raw bytes, trailing newline stripped). :class:`SecretKey` hides its value from ``repr``/``str`` so it
cannot leak into logs, JSON output or tracebacks.
"""
from __future__ import annotations

import os
from pathlib import Path

from provguard.errors import KeyMaterialError

KEY_ENV_VAR = "PROVGUARD_KEY"


class SecretKey:
    """Opaque holder for key bytes. ``bytes(key)`` gives the material; ``repr`` never does."""

    __slots__ = ("_material",)

    def __init__(self, material: bytes | str):
        if isinstance(material, str):
            material = material.encode("utf-8")
        if not material:
            raise KeyMaterialError("the watermark key is empty: pass a non-empty {key}, $PROVGUARD_KEY or {key_file}")
        self._material = bytes(material)

    def __bytes__(self) -> bytes:
        return self._material

    def __repr__(self) -> str:
        return "SecretKey(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and other._material == self._material

    def __hash__(self) -> int:
        return hash(self._material)


def as_key(key: SecretKey | bytes | str) -> SecretKey:
    """Accept a :class:`SecretKey`, bytes or text and return a :class:`SecretKey`."""
    return key if isinstance(key, SecretKey) else SecretKey(key)


def resolve_key(key: str | None = None, key_file: str | os.PathLike | None = None,
                required: bool = True) -> SecretKey | None:
    """Pick the key from (in order) an explicit value, a key file, or ``$PROVGUARD_KEY``.

    Raises :class:`KeyMaterialError` when ``required`` and none is given, or the file is unreadable.
    """
    if key is not None and key_file is not None:
        raise KeyMaterialError("give either {key} or {key_file}, not both")
    if key is not None:
        return SecretKey(key)
    if key_file is not None:
        path = Path(key_file)
        try:
            material = path.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise KeyMaterialError(f"cannot read key file {path}: {exc.strerror or exc}") from None
        if not material:
            raise KeyMaterialError(f"key file {path} is empty: write the key bytes into it")
        return SecretKey(material)
    env = os.environ.get(KEY_ENV_VAR)
    if env:
        return SecretKey(env)
    if required:
        raise KeyMaterialError(
            f"this method needs a secret key: pass {{key}} KEY, {{key_file}} PATH or set ${KEY_ENV_VAR}")
    return None
