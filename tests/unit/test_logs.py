"""Quiet by default: what a command's log session lets through to the terminal, and what it keeps.

Each case runs in a child process because the session moves file descriptors 1 and 2, which pytest's
own capture also uses; the child writes the kinds of output that libraries produce (C++ writing to
fd 2, ``print`` to stdout, third-party loggers, deprecation warnings) next to Aisle's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import logging, os, sys, warnings
    from aisle.core.console import emit_summary, err_console
    from aisle.core.logs import log_session
    from aisle.core.settings import load_settings

    settings = load_settings(home=sys.argv[1])
    with log_session(settings, "probe", verbose=sys.argv[2] == "verbose") as session:
        os.write(2, b"E0000 native line written by C++ to fd 2\\n")
        os.write(1, b"native line written to fd 1\\n")
        print("2026-12-03T07:58:19Z [info     ] Task instance state updated")
        print("library print to stderr", file=sys.stderr)
        logging.getLogger("feast.infra.registry").info("Registry cache expired, so refreshing")
        warnings.warn("the noload loader strategy is deprecated", DeprecationWarning, stacklevel=1)
        logging.getLogger("models.batch").warning("no Feast user features; ranking without them")
        err_console.print("progress: Aisle's own line")
        emit_summary("probe", {"log_file": str(session.path)})
    """
)
NOISE = (
    "native line written by C++",
    "native line written to fd 1",
    "Task instance state updated",
    "library print to stderr",
    "Registry cache expired",
    "noload loader strategy",
)


def _run(tmp_path: Path, mode: str) -> tuple[str, str, Path]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "home"), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    return done.stdout, done.stderr, Path(json.loads(last)["log_file"])


def test_quiet_session_sends_third_party_output_to_the_log_file(tmp_path: Path) -> None:
    stdout, stderr, log = _run(tmp_path, "quiet")
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, lines  # only the JSON summary reaches stdout
    summary = json.loads(lines[0])
    assert summary["job"] == "probe" and summary["log"] == str(log)
    assert log.parent == tmp_path / "home" / "logs"
    for noise in NOISE:
        assert noise not in stderr + stdout, noise
    assert "progress: Aisle's own line" in stderr
    assert "no Feast user features" in stderr  # Aisle's own warnings still show
    kept = log.read_text()
    for noise in NOISE:
        assert noise in kept, noise  # nothing is lost: it is all in the file


def test_verbose_session_shows_third_party_output_and_still_keeps_the_file(tmp_path: Path) -> None:
    stdout, stderr, log = _run(tmp_path, "verbose")
    shown = stdout + stderr
    for noise in ("native line written by C++", "Registry cache expired", "library print to stderr"):
        assert noise in shown, noise
    assert json.loads(stdout.strip().splitlines()[-1])["job"] == "probe"
    assert "Registry cache expired" in log.read_text()


@pytest.mark.parametrize("level", ["debug", "INFO"])
def test_log_level_setting_accepts_level_names(level: str) -> None:
    from aisle.core.settings import load_settings

    assert load_settings(log_level=level).log_level == level.upper()


def test_log_level_setting_refuses_other_words() -> None:
    from aisle.core.errors import BadInput
    from aisle.core.settings import load_settings

    with pytest.raises(BadInput, match="log_level"):
        load_settings(log_level="loud")
