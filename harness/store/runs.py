"""Where runs live: a folder per run (`run.json` + `records/*.json`) and a SQLite index of all of them.

The JSON files are the truth; the index (standard-library sqlite3, next to the results) makes history
queries fast and can always be rebuilt from the files with `bench reindex`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.store.job_key import KEY_FIELDS
from harness.store.record import Record, load_record
from harness.store.records import not_a_file, replacing_folder

COLUMNS = ("run_id", "job_id", "created", *KEY_FIELDS, "status", "unstable", "parity_passed", "p50_ns", "p90_ns", "ci_low_ns", "ci_high_ns",
           "spread", "processes", "commit_sha", "cpu", "preset", "path", "relative", "relative_ci_low", "relative_ci_high",
           "reference", "instructions", "counted_by")
_DDL = f"""CREATE TABLE IF NOT EXISTS records ({', '.join(COLUMNS)}, PRIMARY KEY (run_id, job_id));
CREATE INDEX IF NOT EXISTS records_key ON records (model, backend, device, precision, batch, threads);"""


_INSERT = f"INSERT OR REPLACE INTO records VALUES ({', '.join('?' * len(COLUMNS))})"

RESULTS_ROOT = Path("results")  # the default results folder of every command


def new_run_dir(root: Path = RESULTS_ROOT, prefix: str = "") -> Path:
    """A new run's folder: time-ordered, unique (a random suffix), `prefix` naming what made it."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / "runs" / f"{prefix}{stamp}-{uuid.uuid4().hex[:6]}"


def default_cache_dir() -> Path:
    """Built artifacts and counted figures ($ONEBENCH_CACHE, default ~/.cache/onebench): rebuildable, never results."""
    return Path(os.environ.get("ONEBENCH_CACHE", Path.home() / ".cache" / "onebench"))


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=False, allow_nan=False)


def default_index(root: Path) -> Path:
    return root / "index.sqlite"


def reference_label(identity: dict[str, Any]) -> str:
    """How an index row and a caption name the pinned reference of a relative figure: `mobileone_s0-ort
    (torch 2.11.0, onnxruntime 1.23.2)`; relative figures compare only under the same label."""
    versions = ", ".join(f"{k} {v}" for k, v in identity.items() if k != "name")
    return f"{identity['name']} ({versions})" if versions else identity["name"]


def _row(rec: Record, path: Path) -> tuple:
    s, rel = rec.stats, rec.relative
    return (rec.run_id, rec.job_id, rec.created, *rec.key, rec.status.value, int(rec.unstable),
            None if rec.parity is None else int(rec.parity.passed),
            *((s.p50, s.p90, s.ci_low, s.ci_high, s.spread, s.processes) if s else (None,) * 6),
            (rec.host.get("project") or {}).get("commit"), (rec.host.get("cpu") or {}).get("model"),
            rec.protocol.get("preset"), str(path),
            *((rel.value, rel.ci_low, rel.ci_high, reference_label(rel.reference)) if rel else (None,) * 4),
            rec.instructions, " on ".join(filter(None, rec.counted.identity)) if rec.instructions else None)


def index_record(db: Path, rec: Record | Mapping[str, Any], path: Path) -> None:
    rec = Record.of(rec)
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as con:
        columns = tuple(r[1] for r in con.execute("PRAGMA table_info(records)"))
        if columns and columns != COLUMNS:  # an index from an older onebench: drop it, the files are the truth
            con.execute("DROP TABLE records")
            stale = True
        else:
            stale = False
        con.executescript(_DDL)
        con.execute(_INSERT, _row(rec, path))
    if stale:  # refill it from the records beside it, then this record again (its file may live elsewhere: --out)
        with contextlib.suppress(HarnessError):  # none beside it: the new table holds this record alone
            rebuild(db, db.parent)
        with sqlite3.connect(db) as con:
            con.execute(_INSERT, _row(rec, path))


def rebuild(db: Path, root: Path, say: Callable[[str], None] | None = None) -> int:
    """Recreate the index from every record under `root`; returns how many were indexed. A failed
    rebuild leaves the old index as it was and no half-built file behind."""
    tmp = db.with_suffix(".rebuild")
    tmp.unlink(missing_ok=True)
    count = 0
    try:
        for path in sorted(root.glob("**/records/*.json")):
            try:
                rec = load_record(path)
            except HarnessError as exc:  # one corrupt record is left out and named, never blocks the others
                if say:
                    say(f"skipped: {exc}")
                continue
            index_record(tmp, rec, path)
            count += 1
        if count == 0:
            raise HarnessError(f"no records under {root} that can be read; run `bench run` first")
        tmp.replace(db)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def index_or_warn(db: Path, rec: Record | Mapping[str, Any], path: Path) -> tuple[str | None, bool]:
    """Index one record: (why the index was not simply updated or None, whether it is still usable).
    The index is a cache of the JSON records: a corrupt one is rebuilt from them, an unwritable one is
    left alone and the caller goes on without it."""
    try:
        index_record(db, rec, path)
        return None, True
    except sqlite3.DatabaseError:
        try:
            db.unlink()
            rebuild(db, db.parent)
            return f"the index {db} was corrupt; rebuilt it from the records", True
        except (HarnessError, OSError, sqlite3.Error) as exc:
            return f"the index {db} was corrupt and could not be rebuilt ({exc}); going on without it", False
    except OSError as exc:
        return f"cannot write the index {db} ({exc.strerror or exc}); going on without it (`bench reindex` later)", False


def query(db: Path, **where: Any) -> list[dict[str, Any]]:
    if not db.exists():
        raise HarnessError(f"no index at {db}; run `bench reindex` or `bench run` first")
    clauses = [f"{k} = ?" for k, v in where.items() if v is not None]
    sql = "SELECT * FROM records" + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY created"
    params = [v for v in where.values() if v is not None]
    try:
        return _select(db, sql, params)
    except sqlite3.DatabaseError:
        try:
            rebuild(db, db.parent)
        except (OSError, sqlite3.Error) as exc:
            raise HarnessError(f"the index {db} is corrupt and could not be rebuilt ({exc}); "
                               "`bench reindex` recreates it from the records") from None
        return _select(db, sql, params)


def _select(db: Path, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql, params)]


def _run_folders(root: Path) -> list[Path]:
    """The run folders under `root/runs` (with records or profiles), oldest first."""
    return sorted((p for p in (root / "runs").glob("*") if (p / "records").is_dir() or (p / "profiles").is_dir()),
                  key=lambda p: p.stat().st_mtime)


def latest_folder(root: Path) -> Path | None:
    """The newest run folder, measured or not (where `bench profile` adds its record by default)."""
    folders = _run_folders(root)
    return folders[-1] if folders else None


def _has_numbers(run_dir: Path) -> bool:
    """Whether any record of the run measured something (a sweep where every job was skipped did not)."""
    for path in (run_dir / "records").glob("*.json"):
        try:
            if json.loads(path.read_text()).get("status") == "ok":
                return True
        except (OSError, ValueError):
            continue
    return False


def _unreadable(run_dir: Path) -> str | None:
    """Why a run folder's records cannot be read (the first failure), or None."""
    for path in sorted((run_dir / "records").glob("*.json")):
        try:
            load_record(path)
        except HarnessError as exc:
            return str(exc)
    return None


def find_run(arg: str, root: Path, say: Callable[[str], None] | None = None) -> Path:
    """A run given as a folder, a run id under `root/runs`, or "latest": the newest run with at least one
    number (a run that only skipped or failed is passed over, and `say` is told which run was used)."""
    runs = root / "runs"
    if arg == "latest":
        candidates = [p for p in _run_folders(root) if (p / "records").is_dir()]
        if not candidates:
            raise HarnessError(f"no runs under {runs}; run `bench run` first")
        with_numbers = next((c for c in reversed(candidates) if _has_numbers(c)), None)
        if with_numbers is None:
            raise HarnessError(f"no run under {runs} has a measured number (every job was skipped or failed); "
                               f"see `bench show {candidates[-1]}` for why")
        if say:
            newer = candidates[candidates.index(with_numbers) + 1:]
            corrupt = {c: why for c in newer if (why := _unreadable(c))}
            passed = " (newer runs measured nothing)" if len(newer) > len(corrupt) else ""
            if corrupt:
                newest = list(corrupt)[-1]
                passed += (f" (passed over {len(corrupt)} newer run(s) with unreadable records, the newest "
                           f"{newest}: {corrupt[newest]})")
            say(f"latest run with numbers: {with_numbers}{passed}")
        return with_numbers
    for path in (Path(arg), runs / arg):
        if path.is_dir():
            return path
    if Path(arg).is_file():
        return Path(arg)
    raise HarnessError(f"no run {arg!r} (neither a folder nor a run id under {runs})")


def load_run(path: Path) -> list[Record]:
    """Every record of a run folder (or the one record file given); one job id per run."""
    if path.is_file():
        return [load_record(path)]
    files = sorted((path / "records").glob("*.json"))
    if not files:
        raise HarnessError(f"{path} holds no records (expected {path}/records/*.json)")
    recs = [load_record(f) for f in files]
    seen: dict[str, Path] = {}
    for f, rec in zip(files, recs):
        if rec.job_id in seen:
            raise HarnessError(f"{path} holds job {rec.job_id} twice ({seen[rec.job_id].name} and {f.name}); "
                               "a run has one record per job: remove the copy")
        seen[rec.job_id] = f
    return recs


RUN_STATE = ("records", "partial")  # a run folder's own data: no report is ever written into them
RUN_FILES = ("run.json", "lockstep.json", ".lock")


def is_run_folder(folder: Path) -> bool:
    return (folder / "run.json").is_file() or (folder / "records").is_dir() or (folder / "lockstep.json").is_file()


def check_output_file(path: Path, option: str) -> None:
    """`check_output` for a report file: also a new path or an existing regular file, never a folder, a device,
    a FIFO or a socket (one line naming the path as the user gave it)."""
    what = not_a_file(Path(path))
    if what:
        raise HarnessError(f"{option} {path} is {what}; give a new path or a regular file")
    check_output(path, option)


def check_output(path: Path, option: str) -> None:
    """Refuse, before any work and without creating anything, an output path that cannot be written (its
    nearest existing folder refuses a file, or a file stands where a folder must) or that points inside a
    run folder's records or partial state (or one of its own files): a report written there would replace
    the data it was made from. Errors name the path as the user gave it."""
    target = Path(path).resolve()
    for folder in [target, *target.parents]:
        if not is_run_folder(folder):
            continue
        inside = target.relative_to(folder).parts
        if inside and (inside[0] in RUN_STATE or (len(inside) == 1 and inside[0] in RUN_FILES)):
            raise HarnessError(f"{option} {path} points inside the run folder {folder} ({inside[0]}), which it would "
                               "overwrite; write reports elsewhere")
    _check_writable(target, option, path)


def _check_writable(target: Path, option: str, given: Path) -> None:
    existing = next(p for p in [target, *target.parents] if p.exists())
    if existing != target and not existing.is_dir():
        raise HarnessError(f"{option} {given}: {existing} is a file, not a folder; choose another path")
    folder = existing if existing.is_dir() else existing.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=".onebench-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise HarnessError(f"{option} {given} cannot be written ({exc.strerror or type(exc).__name__} in {folder}); "
                           "choose a writable path") from None


@contextlib.contextmanager
def locked(folder: Path) -> Any:
    """Hold a run folder for one writer: a second sweep into the same folder is refused, not interleaved
    (the lock is the kernel's, so a killed sweep never leaves it held)."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise HarnessError(f"{folder} is being written by another sweep ({holder}); wait for it, or pass another "
                               "--out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        try:
            yield folder
        finally:
            fh.seek(0)
            fh.truncate()


def set_baseline(run_dir: Path, target: Path) -> Path:
    """Replace `target` with a validated copy of a run folder, atomically (copy aside, then rename)."""
    import shutil

    recs = load_run(run_dir)
    if run_dir.is_file():
        raise HarnessError(f"{run_dir} is one record; a baseline is a whole run folder")
    with replacing_folder(target, "records", "a baseline (a run folder)", "bench baseline set") as staging:
        (staging / "records").mkdir()
        for rec in recs:
            (staging / "records" / f"{rec.job_id}.json").write_text(json.dumps(rec.as_document(), separators=(",", ":")))
        if (run_dir / "run.json").exists():
            shutil.copy2(run_dir / "run.json", staging / "run.json")
    return target
