"""Human-written English prose that ships with the machine, for the text-watermark null.

Sources (read at run time, never copied into the repository): Python's own documentation topics
(``pydoc_data.topics``), module/class/function docstrings of the standard library, the licence texts
in ``/usr/share/common-licenses`` and README files under ``/usr/share/doc``. Paragraphs are
de-duplicated across sources (many packages carry the same licence text).
"""
from __future__ import annotations

import ast
import gzip
import hashlib
import re
import sys
from pathlib import Path

_MIN_PARAGRAPH = 200  # characters


def _paragraphs(text: str) -> list[str]:
    parts = re.split(r"\n\s*\n", text)
    return [re.sub(r"\s+", " ", p).strip() for p in parts if len(p.strip()) >= _MIN_PARAGRAPH]


def _read(path: Path) -> str:
    try:
        data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError):
        return ""


def _pydoc_topics() -> list[str]:
    from pydoc_data.topics import topics

    return list(topics.values())


def _stdlib_docstrings(limit_files: int = 400) -> list[str]:
    root = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    texts = []
    for path in sorted(root.glob("*.py"))[:limit_files]:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        texts.append("\n\n".join(d for d in (ast.get_docstring(n) for n in nodes) if d))
    return texts


def _debian_docs() -> list[str]:
    files = sorted(Path("/usr/share/common-licenses").glob("*"))
    files += sorted(Path("/usr/share/doc").glob("*/README*"))
    return [_read(p) for p in files if p.is_file()]


def human_documents(min_chars: int = 1500) -> list[tuple[str, str]]:
    """``(source, text)`` documents of de-duplicated paragraphs, each at least ``min_chars`` long."""
    seen: set[bytes] = set()
    docs = []
    for source, texts in (("python-docs", _pydoc_topics()), ("stdlib-docstrings", _stdlib_docstrings()),
                          ("debian-docs", _debian_docs())):
        for text in texts:
            kept = []
            for para in _paragraphs(text):
                digest = hashlib.blake2b(para.lower().encode(), digest_size=16).digest()
                if digest not in seen:
                    seen.add(digest)
                    kept.append(para)
            doc = "\n\n".join(kept)
            if len(doc) >= min_chars:
                docs.append((source, doc))
    return docs


def token_chunks(tokenizer, docs: list[tuple[str, str]], length: int) -> list[list[int]]:
    """Non-overlapping ``length``-token chunks of the documents' token ids."""
    ids = tokenizer([d for _, d in docs], add_special_tokens=False)["input_ids"]
    return [row[i:i + length] for row in ids for i in range(0, len(row) - length + 1, length)]
