"""dispatch.core.runtime: jobs that run in the jobs process (Job.own_process)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from flask import current_app

from dispatch.core.runtime import Background, Job


def record_pid() -> None:
    """A job: note which process ran it, in the data directory."""
    settings = current_app.config["SETTINGS"]
    (Path(settings.data_dir) / "job.pid").write_text(str(os.getpid()))


def die() -> None:
    """A job whose process dies under it."""
    os._exit(3)


def test_own_process_jobs_run_in_another_process_which_comes_back_after_dying(app, caplog):
    background = Background(app, [])
    pid_file = Path(app.config["SETTINGS"].data_dir) / "job.pid"
    try:
        background._wrap(Job("probe", record_pid, timedelta(hours=1), own_process=True))()
        first = int(pid_file.read_text())
        assert first != os.getpid()

        background._wrap(Job("die", die, timedelta(hours=1), own_process=True))()
        assert "the jobs process died" in caplog.text

        background._wrap(Job("probe", record_pid, timedelta(hours=1), own_process=True))()
        assert int(pid_file.read_text()) not in {first, os.getpid()}
    finally:
        background.stop()
