"""The act stage: ``report`` (touch nothing), ``copy-kept``, ``move-rejected`` + ``restore``.

provguard never deletes user data. ``move-rejected`` moves each rejected *file* into
``RUN_DIR/quarantine/<its relative path>`` after checking its SHA-256 still matches the manifest; every
move is journalled (``journal.jsonl``, fsynced) *before* it happens and confirmed after, so a crash
mid-way is recoverable. ``restore`` puts every quarantined file back, byte-identical (checked by
SHA-256), never overwriting anything; it refuses a journal that points outside the run directory or
the source folder. Actions apply only to file-backed sources (folder trees).
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from provguard.errors import ProvguardError
from provguard.hashing import file_sha256
from provguard.pipeline.rundir import RunDir, write_text

ACTIONS = ("report", "copy-kept", "move-rejected")
_LINE = re.compile(r"#line=\d+$")  # one line of a jsonl file: the file is shared, never moved for one line


def write_lists(run: RunDir, rows: list[dict[str, Any]]) -> None:
    """``kept.txt``, ``rejected.jsonl`` (with reasons) and ``errors.jsonl`` from manifest rows."""
    kept = [r["key"] for r in rows if r["decision"] == "keep"]
    rejected = [json.dumps({"key": r["key"], "path": r["path"], "verdict": r["verdict"], "reasons": r["reasons"],
                            "score": r["score"]}) for r in rows if r["decision"] == "reject"]
    errors = [json.dumps({"key": r["key"], "path": r["path"], "error": r["error"]}) for r in rows if r["error"]]
    for path, lines in ((run.kept, kept), (run.rejected, rejected), (run.errors, errors)):
        write_text(path, "".join(line + "\n" for line in lines))


def _inside(child: bytes, parent: bytes) -> bool:
    child, parent = os.path.realpath(child), os.path.realpath(parent)
    return child == parent or child.startswith(parent.rstrip(b"/") + b"/")


def _move(src: bytes, dst: bytes, sha256: str) -> None:
    """Move a file, across file systems too (copy, verify, then unlink the original)."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.lexists(dst):
        raise ProvguardError(f"{os.fsdecode(dst)!r} already exists; refusing to overwrite it")
    try:
        os.rename(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    tmp = dst + b".partial"
    shutil.copy2(src, tmp)
    if file_sha256(tmp) != sha256:
        os.unlink(tmp)
        raise ProvguardError(f"copy of {os.fsdecode(src)!r} does not match; the original was left in place")
    os.rename(tmp, dst)
    os.unlink(src)


class Journal:
    """Append-only, fsynced record of moves (``journal.jsonl``)."""

    def __init__(self, path: Path):
        self.path = path

    def append(self, entry: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        try:
            return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except ValueError as exc:
            raise ProvguardError(f"{self.path}: the journal is not valid JSON lines ({exc})") from None

    def state(self) -> dict[str, dict[str, Any]]:
        """Last entry per key."""
        out: dict[str, dict[str, Any]] = {}
        for e in self.entries():
            out[e["key"]] = {**out.get(e["key"], {}), **e}
        return out


def _file_rows(rows: list[dict[str, Any]], decision: str, root: bytes) -> list[dict[str, Any]]:
    picked = [r for r in rows if r["decision"] == decision and r["path_raw"] and not _LINE.search(r["key"])]
    for r in picked:
        if not _inside(r["path_raw"], root):
            raise ProvguardError(f"manifest row {r['key']!r} points outside the source folder; refusing to act")
    return picked


def _rel(path_raw: bytes, root: bytes) -> bytes:
    return os.path.relpath(os.path.abspath(path_raw), os.path.abspath(root)) if os.path.isdir(root) else os.path.basename(path_raw)


def copy_kept(run: RunDir, rows: list[dict[str, Any]], source_root: str, dest: str | None = None) -> dict[str, int]:
    """Copy every kept file to ``dest`` (default ``RUN_DIR/kept``) under its relative path."""
    root = os.fsencode(source_root)
    target = os.fsencode(dest or str(run.root / "kept"))
    done = skipped = 0
    for r in _file_rows(rows, "keep", root):
        dst = os.path.join(target, _rel(r["path_raw"], root))
        if os.path.lexists(dst):
            skipped += 1
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(r["path_raw"], dst)
        done += 1
    return {"copied": done, "already_there": skipped}


def move_rejected(run: RunDir, rows: list[dict[str, Any]], source_root: str) -> dict[str, int]:
    """Move every rejected file into the quarantine, journalled; files changed since scoring stay put."""
    root = os.fsencode(source_root)
    journal, state = Journal(run.journal), Journal(run.journal).state()
    moved = changed = already = 0
    for r in _file_rows(rows, "reject", root):
        if state.get(r["key"], {}).get("op") == "moved":
            already += 1
            continue
        if not os.path.isfile(r["path_raw"]) or file_sha256(r["path_raw"]) != r["sha256"]:
            changed += 1
            continue
        rel = _rel(r["path_raw"], root)
        entry = {"key": r["key"], "src_hex": os.path.abspath(r["path_raw"]).hex(), "quarantine_hex": rel.hex(),
                 "sha256": r["sha256"], "reasons": r["reasons"]}
        journal.append({**entry, "op": "planned"})
        _move(r["path_raw"], os.path.join(os.fsencode(str(run.quarantine)), rel), r["sha256"])
        journal.append({"key": r["key"], "op": "moved"})
        moved += 1
    return {"moved": moved, "changed_since_scoring": changed, "already_moved": already}


def restore(run: RunDir, source_root: str) -> dict[str, int]:
    """Put every quarantined file back where it was, byte-identical; checks every entry first."""
    journal = Journal(run.journal)
    todo = []
    quarantine, root = os.fsencode(str(run.quarantine)), os.fsencode(source_root)
    for key, e in journal.state().items():
        if e.get("op") not in ("planned", "moved"):
            continue
        src, held = bytes.fromhex(e["src_hex"]), os.path.join(quarantine, bytes.fromhex(e["quarantine_hex"]))
        if not _inside(held, quarantine) or not (_inside(src, root) or src == os.path.abspath(root)):
            raise ProvguardError(f"journal entry {key!r} points outside the run directory or the source folder; "
                                 "refusing to restore anything (was the journal edited?)")
        todo.append((key, src, held, e["sha256"]))
    restored = missing = blocked = 0
    for key, src, held, sha in todo:
        if not os.path.lexists(held):
            missing += int(not os.path.lexists(src))  # 'planned' but never moved: the file is still in place
            if os.path.lexists(src):
                journal.append({"key": key, "op": "restored"})
            continue
        if os.path.lexists(src):
            blocked += 1
            continue
        if file_sha256(held) != sha:
            raise ProvguardError(f"quarantined copy of {key!r} does not match its recorded SHA-256; left in place")
        _move(held, src, sha)
        journal.append({"key": key, "op": "restored"})
        restored += 1
    return {"restored": restored, "missing": missing, "blocked_by_existing_file": blocked}
