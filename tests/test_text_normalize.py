"""Text normalisation keeps a map back to the original characters."""
import unicodedata

from provguard.watermark.text.normalize import identity_text, normalize_text


def test_invisible_characters_and_spaces():
    r = normalize_text("a\u200bb\u00a0c\ufeffd\u00ade")
    assert r.text == "ab cde"
    assert r.source.tolist() == [0, 2, 3, 4, 6, 8, 9]
    assert r.original_range(0, len(r.text)) == (0, 9)


def test_homoglyphs_only_in_latin_words():
    r = normalize_text("Hеllo wоrld, привет мир, ｆｕｌｌ ΑΒΓ")
    assert r.text.startswith("Hello world, привет мир, full")
    assert "ΑΒΓ" in r.text  # an all-Greek word is left alone
    assert len(r.text) == len("Hеllo wоrld, привет мир, ｆｕｌｌ ΑΒΓ")


def test_nfc_with_offsets():
    text = "cafe\u0301 noe\u0308l"
    r = normalize_text(text)
    assert r.text == unicodedata.normalize("NFC", text) == "café noël"
    start = r.text.index("noël")
    a, b = r.original_range(start, start + 4)
    assert text[a:b] == "noe\u0308l"
    a, b = r.original_range(0, 4)
    assert text[a:b] == "cafe\u0301"


def test_hangul_jamo_falls_back_to_whole_text_nfc():
    text = "\u1100\u1161 x"  # jamo L + V compose to one syllable
    r = normalize_text(text)
    assert r.text == unicodedata.normalize("NFC", text)
    assert len(r.source) == len(r.text) + 1 and r.source[-1] == len(text)


def test_switches():
    text = "Hеllo\u200b"
    assert normalize_text(text, invisible=False, homoglyphs=False, nfc=False).text == text
    assert identity_text(text).text == text and identity_text(text).source.tolist() == list(range(len(text) + 1))
