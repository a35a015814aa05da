"""dispatch.core.runtime: jobs that run in the jobs process (Job.own_process)."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from flask import current_app

from dispatch.core.runtime import (
    ROUTINE_LOGGERS,
    Background,
    ChildProcess,
    Job,
    quiet_routine_loggers,
)


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


ORPHANED = """
import os, pickle, sys
from dispatch import create_app
from dispatch.core.settings import Settings
from dispatch.core.runtime import ChildProcess

with open(sys.argv[1], "rb") as f:
    app = create_app(settings=Settings(pickle.load(f)))
child = ChildProcess(app, "probe")
print(child.call(os.getpid), flush=True)
os._exit(0)  # as a kill -9 would leave it: the pool never told to stop
"""


def _running(pid: int) -> bool:
    """Whether the process runs (an exited one that nobody reaped yet is a zombie: gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.any_backend
def test_a_child_process_leaves_when_its_parent_is_gone(app, tmp_path):
    values = tmp_path / "settings.pickle"
    values.write_bytes(pickle.dumps(app.config["SETTINGS"].as_dict()))
    done = subprocess.run([sys.executable, "-c", ORPHANED, str(values)], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    child = int(done.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _running(child)
    if alive:
        os.kill(child, 9)
    assert not alive, "the child outlived its parent"


@pytest.mark.any_backend
def test_stopping_a_child_process_waits_for_it_to_leave(app):
    """Stopped, the pool is shut down and its worker gone at once (not left to its parent's
    exit, where multiprocessing's resource tracker warned of leaked semaphores)."""
    child = ChildProcess(app, "probe")
    pid = child.call(os.getpid)
    assert pid != os.getpid() and _running(pid)
    child.stop()
    assert not child.started and not _running(pid)


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
