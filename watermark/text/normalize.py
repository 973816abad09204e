"""Text normalisation before tokenising: undo cheap evasions without breaking genuine text.

Three steps, each optional-by-default-on through :func:`normalize_text`:

* remove zero-width and invisible format characters (ZWSP, ZWNJ, ZWJ, word joiner, BOM, soft hyphen,
  Mongolian vowel separator) and map exotic spaces (NBSP, en/em/thin spaces, ideographic space) to
  an ASCII space;
* map common homoglyphs (Cyrillic/Greek lookalikes, fullwidth ASCII letters and digits) to ASCII,
  but only inside words that also contain ASCII letters, so genuine Russian or Greek text is kept;
* Unicode NFC.

Detection reports character positions in the *original* text, so normalisation also returns, for
every character of the normalised text, the index of the original character it came from.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u2061\u2062\u2063\u2064")
SPACES = frozenset("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                   "\u200a\u202f\u205f\u3000")

_CONFUSABLE_PAIRS = (
    # Cyrillic
    "аa", "еe", "оo", "рp", "сc", "уy", "хx", "іi", "јj", "ѕs", "ԁd", "ԛq", "ԝw", "һh",
    "АA", "ВB", "ЕE", "КK", "МM", "НH", "ОO", "РP", "СC", "ТT", "ХX", "УY", "ІI", "ЈJ", "ЅS",
    # Greek
    "αa", "οo", "ιi", "νv", "κk", "ρp", "τt", "υu",
    "ΑA", "ΒB", "ΕE", "ΖZ", "ΗH", "ΙI", "ΚK", "ΜM", "ΝN", "ΟO", "ΡP", "ΤT", "ΥY", "ΧX",
)
HOMOGLYPHS: dict[str, str] = {pair[0]: pair[1] for pair in _CONFUSABLE_PAIRS}
FULLWIDTH: dict[str, str] = {chr(c): chr(c - 0xFEE0) for lo, hi in ((0xFF10, 0xFF1A), (0xFF21, 0xFF3B),
                                                                    (0xFF41, 0xFF5B)) for c in range(lo, hi)}

_WORD = re.compile(r"\w+")
_ASCII_LETTER = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class NormalizedText:
    """``text`` after normalisation; ``source[i]`` is the original index of ``text[i]``, shape (len+1,).

    ``source[len(text)]`` is ``len(original)``, so a half-open range ``[a, b)`` of the normalised
    text maps to ``[source[a], source[b])`` in the original (which keeps combining marks that NFC
    composed, and any invisible characters removed just before ``b``).
    """

    text: str
    source: np.ndarray

    def original_range(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open character range of the normalised text back to the original."""
        return int(self.source[start]), int(self.source[max(end, start)])


def _strip_invisible(text: str) -> tuple[list[str], list[int]]:
    chars, source = [], []
    for i, ch in enumerate(text):
        if ch in ZERO_WIDTH:
            continue
        chars.append(" " if ch in SPACES else ch)
        source.append(i)
    return chars, source


def _map_homoglyphs(chars: list[str]) -> list[str]:
    """Fullwidth ASCII -> ASCII everywhere; Cyrillic/Greek lookalikes only in words with ASCII letters."""
    out = [FULLWIDTH.get(ch, ch) for ch in chars]
    text = "".join(out)
    if not any(ch in HOMOGLYPHS for ch in text):
        return out
    for word in _WORD.finditer(text):
        if _ASCII_LETTER.search(word.group()):
            for j in range(word.start(), word.end()):
                out[j] = HOMOGLYPHS.get(out[j], out[j])
    return out


def _nfc(chars: list[str], source: list[int]) -> tuple[str, list[int]]:
    """NFC cluster by cluster (a starter plus the marks after it), keeping the source map."""
    text = "".join(chars)
    if unicodedata.is_normalized("NFC", text):
        return text, source
    pieces, new_source, start = [], [], 0
    for i in range(1, len(chars) + 1):
        if i == len(chars) or unicodedata.combining(chars[i]) == 0:
            piece = unicodedata.normalize("NFC", "".join(chars[start:i]))
            pieces.append(piece)
            new_source.extend(source[start + min(k, i - start - 1)] for k in range(len(piece)))
            start = i
    out = "".join(pieces)
    if not unicodedata.is_normalized("NFC", out):  # compositions across clusters (e.g. Hangul jamo)
        whole = unicodedata.normalize("NFC", text)
        scale = len(source) / max(len(whole), 1)
        return whole, [source[min(int(k * scale), len(source) - 1)] for k in range(len(whole))]
    return out, new_source


def normalize_text(text: str, *, invisible: bool = True, homoglyphs: bool = True,
                   nfc: bool = True) -> NormalizedText:
    """Normalise ``text`` (see module doc) and keep the map back to original character indices."""
    if invisible:
        chars, source = _strip_invisible(text)
    else:
        chars, source = list(text), list(range(len(text)))
    if homoglyphs:
        chars = _map_homoglyphs(chars)
    if nfc:
        out, source = _nfc(chars, source)
    else:
        out = "".join(chars)
    return NormalizedText(out, np.array(list(source) + [len(text)], dtype=np.int64))


def identity_text(text: str) -> NormalizedText:
    """``text`` unchanged, with the identity source map (normalisation switched off)."""
    return NormalizedText(text, np.arange(len(text) + 1, dtype=np.int64))
