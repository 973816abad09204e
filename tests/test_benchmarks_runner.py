"""`make bench` (``python -m benchmarks``) runs every benchmark module, skips the corpus studies without
the corpus, and refuses a name it does not know."""
import ast
import subprocess
import sys
from pathlib import Path

from benchmarks.__main__ import BENCHMARKS, main

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def _runnable_modules() -> set[str]:
    """Benchmark modules with an ``if __name__ == "__main__"`` block (read from source, not imported)."""
    out = set()
    for f in BENCH_DIR.glob("*.py"):
        if f.name.startswith("_"):
            continue
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                out.add(f.stem)
    return out


def test_every_runnable_benchmark_is_in_the_runner():
    assert set(BENCHMARKS) == _runnable_modules()


def test_an_unknown_name_is_refused_before_anything_runs(capsys):
    assert main(["probe_views", "no_such_bench"]) == 2
    err = capsys.readouterr().err
    assert "no_such_bench" in err and "probe_views" in err.split("choose from")[1]


def test_a_corpus_study_without_its_corpus_is_skipped_not_failed(monkeypatch):
    # a child that exits 2 (what open_corpus does without the corpus) counts as skipped; exit 1 as failed
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 2 if cmd[2].endswith("probe_views") else 1)

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert main(["probe_views"]) == 0
    assert main(["probe_views", "classifier_speed"]) == 1
    assert calls[-1] == [sys.executable, "-m", "benchmarks.classifier_speed", "--n", "96"]
