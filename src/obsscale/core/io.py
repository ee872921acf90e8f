"""File output shared by every stage: atomic writes, so that no half-written file is ever read as
complete, and a provenance record for each table."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from obsscale.core.errors import InputError  # noqa: F401  (re-exported: the rule boundary)

log = logging.getLogger(__name__)


def current_umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not atomic across threads)
    os.umask(mask)
    return mask


_HOST = platform.node().replace(".", "_") or "host"


def _writer_alive(tmp: Path) -> bool:
    """Whether the process that made an atomic-write temporary (`.<name>.<host>-<pid>.<random>.tmp`)
    may still be writing it: a temporary of this host whose process is gone is stale."""
    owner = tmp.name[:-len(".tmp")].rsplit(".", 2)
    if len(owner) != 3 or "-" not in owner[1]:
        return True  # not one of ours
    host, _, pid = owner[1].rpartition("-")
    if host != _HOST or not pid.isdigit():
        return True  # another machine's writer: cannot tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, name: str = "*") -> list[Path]:
    """Delete the atomic-write temporaries under `folder` (of file `name`) that a killed process
    left behind; temporaries of live writers are kept.  Returns the deleted paths."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f".{name}.*.tmp"
    stale = [p for p in (folder.glob(pattern) if name != "*" else folder.rglob(pattern))
             if p.is_file() and not _writer_alive(p)]
    for p in stale:
        log.info("removing the temporary file of an interrupted run: %s", p)
        p.unlink(missing_ok=True)
    return stale


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The file gets the mode of any new file (0666 less the umask, 0644 under umask 022), not
    mkstemp's private 0600, so that collaborators on shared storage can read the results.  The
    temporary's name carries this host and process id, so that the leftover of a killed writer is
    recognised and removed the next time the file is written (or by `remove_stale_temporaries`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_csv(df: pd.DataFrame, path: str | os.PathLike, **kwargs: Any) -> None:
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def provenance(inputs: dict[str, str | os.PathLike] | None = None, **settings: Any) -> dict[str, Any]:
    """What produced a result: software versions, input file hashes and the settings used."""
    from obsscale import __version__

    record: dict[str, Any] = {
        "obsscale_version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": {k: {"path": str(v), "sha256": file_sha256(v)} for k, v in (inputs or {}).items()},
        "settings": settings,
    }
    for name in ("numpy", "pandas", "scipy", "sklearn"):
        mod = sys.modules.get(name)
        if mod is not None:
            record.setdefault("packages", {})[name] = getattr(mod, "__version__", "?")
    return record


class _Tally(logging.Filter):
    """Holds back the records whose message contains `contains`, counting them."""

    def __init__(self, contains: str):
        super().__init__()
        self.contains = contains
        self.count = 0
        self.first = ""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if self.contains not in msg:
            return True
        self.count += 1
        self.first = self.first or msg
        return False


@contextlib.contextmanager
def tallied_warnings(contains: str, *loggers: str) -> Iterator[list[_Tally]]:
    """Expected, repeated warnings (e.g. degenerate fits of tiny subsets) counted instead of
    printed: records of each named logger whose message contains `contains` are held back; the
    caller logs one summary line from the tallies (one per logger: `count`, `first` message).
    Worker processes forked inside the block inherit the filter, but their counts stay there."""
    tallies = [_Tally(contains) for _ in loggers]
    for name, tally in zip(loggers, tallies):
        logging.getLogger(name).addFilter(tally)
    try:
        yield tallies
    finally:
        for name, tally in zip(loggers, tallies):
            logging.getLogger(name).removeFilter(tally)


def setup_logging(logfile: str | os.PathLike | None = None, level: int = logging.INFO) -> None:
    """Send the library's log records to a rule's log file (and stderr)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    # Font subsetting in PDF output logs every glyph at INFO.
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    sys.excepthook = _log_uncaught


def _log_uncaught(exc_type, exc, tb) -> None:
    logger = logging.getLogger("obsscale")
    if issubclass(exc_type, InputError):
        logger.error("%s", exc)
    else:
        logger.error("%s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb))


def finish_job() -> None:
    """End a rule's job that finished its work: exit handlers run (log files flushed and closed),
    then the process exits at once, skipping the interpreter's teardown of every imported module.

    The teardown of a job that imported pandas, scikit-learn and matplotlib costs about 0.25 s of CPU,
    paid once per job for nothing (bench/workflow_runtime.py).  Only called after the job's last
    output is written: an error never reaches it and exits through the normal path with its status."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)
