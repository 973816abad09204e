"""Mutation testing (``make mutation``): mutmut on the modules where a silent bug costs users most.

Each module is mutated on its own, against the tests that guard it (fast tests only: mutmut runs the
tests that cover a mutated function once per mutant). mutmut imports the package from a copy of the
tree, so the committed tree (``git archive HEAD``) is staged under ``.mutation/<module>/`` in the plain
layout mutmut expects (``provguard/watermark`` and ``provguard/detectors`` as real folders, as the
package-dir mapping installs them); the working tree is never touched.

    python tests/mutation/run_mutmut.py [MODULE ...] [--max-children N] [--sample N --seed S]

prints one row per module (score = (killed + timeout) / (mutants - skipped), mutmut's own badge score;
a mutant no test reaches counts as surviving) and writes ``.mutation/scores.json``. Not part of ``make test`` (it takes long).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGE = ROOT / ".mutation"

_PIN = "tests/test_pinned.py::"
_KEYED = "tests/test_keyed_watermark.py::"
_SD = "tests/test_sd_watermark.py::"
_NULL = "tests/test_null_uniformity.py::"
_INT = "tests/test_pipeline_integrity.py::"

#: module (staged path) -> tests that guard it
MODULES: dict[str, list[str]] = {
    "provguard/watermark/image/keyed.py": [
        _PIN + "test_key_derivation_is_pinned", _PIN + "test_chip_layout_is_pinned",
        _PIN + "test_committed_keyed_mark_is_still_detected", _PIN + "test_keyed_embedder_still_writes_the_pinned_pixels",
        "tests/test_keyed_exact.py", _KEYED + "test_payload_forms_and_errors", _KEYED + "test_chase_decoding_repairs_the_weakest_bits",
        _KEYED + "test_key_layout_is_pinned_and_device_independent", _KEYED + "test_key_is_never_shown",
        _KEYED + "test_psnr_is_at_least_40_db", _KEYED + "test_clean_marks_are_detected_with_the_payload",
        _KEYED + "test_geometry_is_recovered"],
    "provguard/watermark/image/sd.py": [
        "tests/test_sd_reported.py", _PIN + "test_committed_sd_mark_is_still_detected",
        _PIN + "test_sd_writer_still_writes_the_pinned_pixels", _SD + "test_embedding_is_byte_identical_to_invisible_watermark",
        _SD + "test_raw_decoding_matches_invisible_watermark_on_unmarked_photos", _SD + "test_conformal_p_values",
        _SD + "test_too_small_images_get_a_clear_error", _SD + "test_pixel_paths_round_trip_through_the_matching_read_out",
        _SD + "test_cpu_kernel_is_bit_identical_to_the_torch_path"],
    "provguard/watermark/text/stats.py": [
        "tests/test_text_stats.py", "tests/test_text_stats_exact.py", _NULL + "test_binomial_p_value_is_uniform_when_randomised",
        _NULL + "test_text_p_values_are_uniform_under_the_null"],
    "provguard/watermark/text/detector.py": [
        "tests/test_text_detector.py", _NULL + "test_text_p_values_are_uniform_under_the_null"],
    "provguard/detectors/calibration.py": ["tests/test_detectors_calibration.py",
                                           "tests/test_detectors_calibration_exact.py"],
    "provguard/detectors/fusion.py": ["tests/test_detectors_fusion.py", "tests/test_detectors_fusion_edges.py",
                                      "tests/test_pipeline_units.py"],
    "provguard/pipeline/decide.py": ["tests/test_pipeline_units.py", "tests/test_pipeline_decide_records.py",
                                     "tests/test_detectors_fusion.py"],
    "provguard/pipeline/shards.py": ["tests/test_pipeline_units.py"],
    "provguard/pipeline/actions.py": ["tests/test_pipeline_lists.py"] + [
        _INT + name for name in ("test_file_changed_since_scoring_stays_put",
                                 "test_restore_refuses_to_overwrite_a_file_that_reappeared",
                                 "test_crash_after_planned_before_the_move",
                                 "test_crash_after_the_move_before_moved_is_journalled",
                                 "test_move_falls_back_to_copy_verify_unlink_across_devices",
                                 "test_move_across_real_file_systems",
                                 "test_move_rejected_then_restore_gives_back_any_tree")],
}


#: module -> pytest plugins (in tests/mutation/) that warm mutmut's fork server for its tests
WARM_UP: dict[str, list[str]] = {"provguard/watermark/text/detector.py": ["warm_tokenizer"]}


def short(module: str) -> str:
    return module.removeprefix("provguard/").removesuffix(".py").replace("/", ".")


def stage(module: str) -> Path:
    """The committed tree in mutmut's layout, with a ``[tool.mutmut]`` section for ``module``."""
    where = STAGE / short(module)
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    blob = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(where / "tree", filter="data")
    tree = where / "tree"
    shutil.move(tree / "provguard", where / "provguard")
    shutil.move(tree / "watermark", where / "provguard" / "watermark")
    shutil.move(tree / "detectors", where / "provguard" / "detectors")
    shutil.move(tree / "tests", where / "tests")
    toml = (tree / "pyproject.toml").read_text()
    tests = ", ".join(json.dumps(t) for t in MODULES[module])
    plugins = [arg for name in WARM_UP.get(module, []) for arg in ("-p", name)]
    toml += ("\n[tool.mutmut]\nsource_paths = [\"provguard\"]\n"
             f"only_mutate = [{json.dumps(module)}]\n"
             f"pytest_add_cli_args_test_selection = [{tests}]\n"
             f"pytest_add_cli_args = {json.dumps(['-p', 'no:cacheprovider', '-W', 'ignore', *plugins])}\n"
             "use_git_change_detection = false\n"
             # fork each mutant from a clean server, not from the process that ran the suite: torch's
             # thread pool does not survive fork, and such a worker hangs until the wall timeout,
             # which mutmut would count as a detected mutant
             "process_isolation = \"forkserver\"\n"
             # mutmut times a mutant out at (test time + 1 s) x multiplier of wall clock; on a shared
             # machine the default 15 turns slow-but-failing mutants into "timeouts" (counted as
             # kills), so wait longer: a real timeout is an infinite loop and still ends the run
             "timeout_multiplier = 60.0\n")
    (where / "pyproject.toml").write_text(toml)
    shutil.rmtree(tree)
    return where


def score(where: Path) -> dict[str, float]:
    subprocess.run([str(Path(sys.executable).with_name("mutmut")), "export-cicd-stats"], cwd=where,
                   check=True, capture_output=True)
    s = json.loads((where / "mutants" / "mutmut-cicd-stats.json").read_text())
    tested = s["total"] - s["skipped"]  # mutmut's own score: a timeout is a detected mutant
    return {**s, "score": (s["killed"] + s["timeout"]) / tested if tested else float("nan")}


def mutant_names(where: Path, module: str) -> list[str]:
    """Every mutant mutmut generated for ``module`` (read off the mutated copy's function names)."""
    dotted = module.removesuffix(".py").replace("/", ".")
    source = (where / "mutants" / module).read_text()
    return [f"{dotted}.{name}" for name in re.findall(r"^\s*def (x\S*?__mutmut_\d+)\(", source, flags=re.M)]


def sampled_score(where: Path, names: list[str]) -> dict[str, float]:
    """Score of the mutants ``names`` from ``mutmut results``, with a 95% Wilson interval."""
    listing = subprocess.run([str(Path(sys.executable).with_name("mutmut")), "results", "--all", "true"], cwd=where,
                             check=True, capture_output=True, text=True).stdout
    status = dict(line.strip().rsplit(": ", 1) for line in listing.splitlines() if ": " in line)
    counts = {k: sum(status.get(n) == k for n in names) for k in ("killed", "survived", "timeout", "no tests")}
    n, hits = len(names), counts["killed"] + counts["timeout"]
    z, phat = 1.959964, hits / len(names)
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"total": n, "killed": counts["killed"], "survived": counts["survived"], "timeout": counts["timeout"],
            "no_tests": counts["no tests"], "skipped": 0, "score": phat, "score_ci": [centre - half, centre + half]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help=f"short names, default all: {[short(m) for m in MODULES]}")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="run a seeded random sample of N mutants per module (score with a 95%% interval)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    wanted = [m for m in MODULES if not args.modules or short(m) in args.modules]
    results_file = STAGE / "scores.json"
    results: dict[str, dict] = {}

    def record(module: str, row: dict) -> None:  # re-read first: another run may have written a module
        results.update(json.loads(results_file.read_text()) if results_file.exists() else {})
        results[short(module)] = row
        results_file.write_text(json.dumps(results, indent=1) + "\n")

    env = {k: v for k, v in os.environ.items() if k != "PROVGUARD_REQUIRE_ASSETS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests" / "mutation"), env.get("PYTHONPATH")]))
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    for module in wanted:
        where = stage(module)
        print(f"== {short(module)}: mutmut run in {where}", flush=True)
        if args.sample is None:
            subprocess.run([mutmut, "run", "--max-children", str(args.max_children)], cwd=where, env=env)
            record(module, score(where))
            continue
        # mutmut generates the mutants and maps tests to functions before it filters by name, so a run
        # for a name that matches nothing does just that (and then stops); the seeded sample follows
        subprocess.run([mutmut, "run", "--max-children", str(args.max_children), "generate-only"], cwd=where,
                       env=env, capture_output=True)
        names = mutant_names(where, module)
        sample = sorted(random.Random(args.seed).sample(names, min(args.sample, len(names))))
        print(f"   sampled {len(sample)} of {len(names)} mutants (seed {args.seed})", flush=True)
        subprocess.run([mutmut, "run", "--max-children", str(args.max_children), *sample], cwd=where, env=env)
        record(module, {**sampled_score(where, sample), "mutants_generated": len(names), "seed": args.seed})
    print(f"\n{'module':<28}{'mutants':>8}{'killed':>8}{'survived':>9}{'timeout':>8}{'no tests':>9}{'score':>8}")
    for name, s in results.items():
        ci = f" [{s['score_ci'][0]:.1%}, {s['score_ci'][1]:.1%}] of a sample" if "score_ci" in s else ""
        print(f"{name:<28}{s['total']:>8}{s['killed']:>8}{s['survived']:>9}{s['timeout']:>8}{s['no_tests']:>9}"
              f"{s['score']:>8.1%}{ci}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
