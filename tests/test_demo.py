"""`provguard demo` builds its folder, filters it and catches every marked file by the right detector."""
from __future__ import annotations

from click.testing import CliRunner

from provguard.cli import main


def test_demo_catches_each_marker(tmp_path):
    r = CliRunner().invoke(main, ["demo", "--run-dir", str(tmp_path / "demo"), "--no-llm", "--no-simulate", "--workers", "0"])
    assert r.exit_code == 0, r.output
    table = [line for line in r.output.splitlines() if line[:1].isalpha() and "/" in line.split()[0]]
    lines = {line.split()[0]: line for line in table}
    assert len(lines) == 18  # 14 images, 2 texts (no LLM), 2 bad files: every file is listed
    assert sum("watermark:sd:detected" in line for name, line in lines.items() if name.startswith("generated/sdxl")) >= 2
    for name, line in lines.items():
        if name.startswith("generated/provguard"):
            assert "watermark:provguard:detected" in line
        elif name.startswith("downloads/a1111"):
            assert "png-text:automatic1111" in line
        elif name.startswith("downloads/iptc"):
            assert "xmp:digitalsourcetype" in line
        elif name.startswith(("photos/", "text/")):
            assert " keep " in line, line
        elif name.startswith("bad/"):
            assert " error " in line
    assert "report:" in r.output and (tmp_path / "demo/filter-run/report.html").exists()
    # a second run replaces the demo's own output; a foreign folder is refused
    assert CliRunner().invoke(main, ["demo", "--run-dir", str(tmp_path / "demo"), "--no-llm", "--no-simulate",
                                     "--workers", "0"]).exit_code == 0
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign/keep.txt").write_text("user data")
    r = CliRunner().invoke(main, ["demo", "--run-dir", str(tmp_path / "foreign"), "--no-llm", "--no-simulate"])
    assert r.exit_code != 0 and (tmp_path / "foreign/keep.txt").read_text() == "user data"
