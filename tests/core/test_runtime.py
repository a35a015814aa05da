"""dispatch.core.runtime: jobs that run in the jobs process (Job.own_process)."""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from pathlib import Path

from flask import current_app

from dispatch.core.runtime import ROUTINE_LOGGERS, Background, Job, quiet_routine_loggers


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


def test_the_log_says_which_job_ran_long_and_keeps_routine_lines_below_info(app, caplog):
    background = Background(app, [])
    with caplog.at_level(logging.INFO, logger="dispatch.core.runtime"):
        background._wrap(Job("quick", lambda: None, timedelta(hours=1)))()
        background._wrap(Job("sluggish", lambda: time.sleep(0.06), timedelta(seconds=0.1)))()
    slow = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(" took ")[0] for r in slow] == ["job sluggish"]

    try:
        quiet_routine_loggers("INFO")
        assert all(not logging.getLogger(n).isEnabledFor(logging.INFO) for n in ROUTINE_LOGGERS)
        assert logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.WARNING)
        quiet_routine_loggers("debug")
        assert logging.getLogger("apscheduler").isEnabledFor(logging.DEBUG)
    finally:
        for name in ROUTINE_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
