"""Quiet by default: one log file per command run for everything that is not Aisle's own output.

A new user should see Aisle's progress bars, tables and summaries, not Airflow's task runner, the JVM's
start-up notices or TensorFlow's C++ banner. Much of that noise never passes through Python logging
(the JVM and TensorFlow write straight to file descriptor 2; Airflow's structlog writes to stdout), so
muting loggers is not enough. While a command runs, :func:`log_session` therefore points descriptors 1
and 2 at ``$AISLE_HOME/logs/<command>-<time>.log`` and hands the console and the JSON summary the saved
terminal streams. Child processes started meanwhile (the Spark JVM) inherit the log file too.

``--verbose`` or ``AISLE_LOG_LEVEL`` leaves the descriptors alone and shows every logger at that level
on the terminal; the log file still receives a copy of Python logging.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from aisle.core.console import err_console, use_terminal
from aisle.core.settings import Settings, ensure_home

#: Loggers whose warnings a user should see even when quiet: Aisle's own packages.
OWN_LOGGERS = ("aisle", "ingestion", "feature_repo", "models", "serving", "monitoring", "dags")
#: Third-party loggers that are chatty even at INFO (per-retry or per-function lines); WARNING in the file.
CHATTY_LOGGERS = ("kafka", "py4j", "urllib3", "alembic", "httpx")
#: Log files kept in ``$AISLE_HOME/logs``; older ones are removed when a new one is opened.
KEEP_LOG_FILES = 50


@dataclass
class LogSession:
    """The running command's log file and whether third-party output is shown on the terminal."""

    path: Path
    verbose: bool
    level: int
    header_bytes: int = 0
    redirected: bool = False

    def has_output(self) -> bool:
        """Whether anything beyond the header reached the log file so far (its path is worth printing)."""
        try:
            return self.path.stat().st_size > self.header_bytes
        except OSError:
            return False


_active: LogSession | None = None


def active() -> LogSession | None:
    """The session of the command running in this process, if any."""
    return _active


class _OwnOrVerbose(logging.Filter):
    """Terminal filter: everything when verbose, else only Aisle's own loggers at WARNING and above."""

    def __init__(self, verbose: bool, level: int):
        super().__init__()
        self.verbose = verbose
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose:
            return record.levelno >= self.level
        own = record.name.split(".", 1)[0] in OWN_LOGGERS
        return own and record.levelno >= logging.WARNING


_HANDLER_MARK = "_aisle_session_handler"


def _handlers(session: LogSession, file: TextIO) -> list[logging.Handler]:
    from rich.logging import RichHandler

    to_file = logging.StreamHandler(file)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    to_file.setLevel(min(session.level, logging.INFO))
    to_terminal = RichHandler(console=err_console, show_path=False, show_time=session.verbose)
    to_terminal.addFilter(_OwnOrVerbose(session.verbose, session.level))
    for handler in (to_file, to_terminal):
        setattr(handler, _HANDLER_MARK, True)
    return [to_file, to_terminal]


_installed: list[logging.Handler] = []


def attach_handlers() -> None:
    """(Re)install the session's handlers on the root logger.

    Airflow replaces the root logger's handlers when it is imported and again when ``dag.test`` runs,
    so code that ran Airflow calls this afterwards; outside a session it does nothing.
    """
    if _active is None:
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler not in _installed:
            root.removeHandler(handler)  # theirs write to stdout/stderr, which we already capture
    for handler in _installed:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(min(_active.level, logging.INFO))
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if _active.level <= logging.DEBUG else logging.WARNING)
    for name in OWN_LOGGERS:  # a library may have raised them; ours always reach the handlers
        logger = logging.getLogger(name)
        logger.setLevel(logging.NOTSET)
        logger.disabled = False
        logger.propagate = True


def background_logging(level: int = logging.INFO) -> None:
    """Logging for a supervised background process whose stdout/stderr already are its log file: every
    record to stderr with a timestamp, chatty libraries at WARNING. Commands use :func:`log_session`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)


def record_exception(message: str) -> None:
    """Write the exception being handled, with its traceback, to the log file only (never the terminal)."""
    if _active is None or not _installed:
        return
    record = logging.getLogger("aisle").makeRecord(
        "aisle", logging.ERROR, __file__, 0, message, (), sys.exc_info()
    )
    _installed[0].handle(record)


_EXCEPTION_LINE = re.compile(
    r"^(?:[a-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception|Input|Failed|Unavailable)): (.+)$"
)


def last_exception(since_byte: int = 0) -> str | None:
    """The last ``ExceptionType: message`` line a traceback left in this session's log file after
    ``since_byte``: why a task that Airflow ran in-process failed, for a one-sentence error."""
    if _active is None:
        return None
    try:
        with _active.path.open("rb") as handle:
            handle.seek(since_byte)
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        match = _EXCEPTION_LINE.match(line.strip())
        if match:
            return f"{match.group(1)}: {match.group(2)}"
    return None


def log_size() -> int:
    """Bytes in this session's log file now (0 outside a session); a mark for :func:`last_exception`."""
    if _active is None:
        return 0
    try:
        return _active.path.stat().st_size
    except OSError:
        return 0


def _prune(directory: Path, keep: int) -> None:
    logs = sorted(directory.glob("*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[:-keep] if keep > 0 else logs:
        with contextlib.suppress(OSError):
            old.unlink()


def _open_log(settings: Settings, job: str) -> tuple[Path, TextIO]:
    ensure_home(settings)  # an unwritable AISLE_HOME is bad input (exit 2), said in one sentence
    directory = settings.paths.logs
    directory.mkdir(parents=True, exist_ok=True)
    _prune(directory, KEEP_LOG_FILES - 1)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = directory / f"{job}-{stamp}.log"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{job}-{stamp}-{n}.log"
    return path, path.open("a", encoding="utf-8", buffering=1)


def _terminal_copy(stream: TextIO) -> TextIO | None:
    """A new stream on a duplicate of ``stream``'s descriptor, or None when it has none (test runners)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    stream.flush()
    return os.fdopen(os.dup(fd), "w", encoding=getattr(stream, "encoding", None) or "utf-8", buffering=1)


@contextlib.contextmanager
def log_session(settings: Settings, job: str, *, verbose: bool = False) -> Iterator[LogSession]:
    """Run a command with third-party output in its own log file (quiet) or on the terminal (verbose)."""
    global _active
    if _active is not None:  # a command run from inside another one: the outer session holds the fds
        yield _active
        return
    level_name = settings.log_level or ("INFO" if verbose else None)
    session_verbose = level_name is not None
    level = logging.getLevelName(level_name or "INFO")
    path, file = _open_log(settings, job)
    file.write(f"# aisle {' '.join(sys.argv[1:])}  ({datetime.now().isoformat(timespec='seconds')})\n")
    session = LogSession(path=path, verbose=session_verbose, level=level, header_bytes=file.tell())

    saved_fds: list[tuple[int, int]] = []
    out_copy = err_copy = None
    if not session_verbose:
        out_copy, err_copy = _terminal_copy(sys.stdout), _terminal_copy(sys.stderr)
        if out_copy is not None and err_copy is not None:
            for fd in (1, 2):
                saved_fds.append((fd, os.dup(fd)))
                os.dup2(file.fileno(), fd)
            session.redirected = True
        else:  # a test runner's streams: leave both alone, third-party logging still goes to the file
            for copy in (out_copy, err_copy):
                if copy is not None:
                    copy.close()
            out_copy = err_copy = None
    use_terminal(out_copy, err_copy, {"log": str(path)})

    root = logging.getLogger()
    previous = (list(root.handlers), root.level)
    _installed[:] = _handlers(session, file)
    _active = session
    attach_handlers()
    logging.captureWarnings(True)  # library deprecation notices become log records (file only when quiet)
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # once per place, and into the log, not ignored
            yield session
    finally:
        logging.captureWarnings(False)
        for handler in _installed:
            root.removeHandler(handler)
            handler.close()
        _installed.clear()
        root.handlers[:] = previous[0]
        root.setLevel(previous[1])
        _active = None
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        for fd, saved in reversed(saved_fds):
            os.dup2(saved, fd)
            os.close(saved)
        use_terminal(None, None, {})
        file.write(f"# finished after {time.perf_counter() - started:.1f}s\n")
        file.close()
        for copy in (out_copy, err_copy):
            if copy is not None:
                with contextlib.suppress(OSError, ValueError):
                    copy.close()
