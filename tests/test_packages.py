"""Each domain package has the same room (STYLE.md "A domain package's room"): it registers itself
through its own init_app, owns its settings rules, metrics, body limit, jobs and live events, and
the kernel keeps none of them."""

from __future__ import annotations

import pytest

import dispatch
from dispatch.core import metrics as kernel_metrics
from dispatch.core import settings as kernel_settings


@pytest.fixture
def overrides(overrides):
    # A small ingest limit must not shrink what other packages' endpoints take.
    return {**overrides, "ingest": {"max_payload_bytes": 1000}}


def test_the_factory_calls_each_package_init_app():
    assert [p.__name__ for p in dispatch.PACKAGES] == ["maps", "telemetry", "alerts", "depot",
                                                    "dispatch.evacuation", "dispatch.roster",
                                                    "dispatch.positions", "dispatch.views"]
    assert all(callable(p.init_app) for p in dispatch.PACKAGES)


def test_settings_rules_of_a_package_are_its_own():
    from telemetry.settings import check_settings

    assert check_settings in kernel_settings._PACKAGE_CHECKS
    source = (kernel_settings.ROOT / "dispatch/core/settings.py").read_text()
    assert '"ingest.' not in source and '"telemetry.' not in source
    with pytest.raises(kernel_settings.SettingsError, match=r"telemetry\.antecedent_k"):
        kernel_settings.load_settings(environ={"RESCUEHUB_TELEMETRY_ANTECEDENT_K": "1.5"})


@pytest.mark.any_backend
def test_the_kernel_keeps_no_domain_metrics(client, bearer):
    assert not [name for name in vars(kernel_metrics) if name.startswith(("readings_", "ingest_"))]
    text = client.get("/metrics", headers=bearer("viewer")).get_data(as_text=True)
    for name in ("rescuehub_readings_received_total", "rescuehub_readings_stored_total",
                 "rescuehub_readings_duplicate_total", "rescuehub_ingest_queue_depth",
                 'rescuehub_readings_rejected_total{reason="too_old"}', "rescuehub_mqtt_connected"):
        assert name in text


@pytest.mark.any_backend
def test_each_package_raises_the_body_limit_for_its_own_endpoints(app, client, bearer):
    # Before: the factory set the app's limit from ingest.max_payload_bytes alone, so a lower
    # ingest limit refused a 100 KB village import with 413.
    assert app.config["MAX_CONTENT_LENGTH"] == 576 * 1024
    editor = bearer("dispatcher")
    body = ("code,name_zh,wkt\n" + "V1,x,POINT (1 1)\n" * 6000).encode()
    response = client.post("/api/v1/villages/import", data=body, headers=editor,
                           content_type="text/csv")
    assert len(body) > 65536 + 1000 and response.status_code != 413


def test_dispatch_jobs_only_lists_the_packages_jobs():
    import inspect

    from dispatch import jobs

    assert not [name for name, f in inspect.getmembers(jobs, inspect.isfunction)
                if f.__module__ == jobs.__name__]
    assert {job.func.__module__ for job in jobs.SCHEDULE} == {"dispatch.core.jobs",
                                                             "telemetry.jobs", "alerts.jobs",
                                                             "dispatch.evacuation.jobs",
                                                             "dispatch.positions.jobs",
                                                             "dispatch.roster.jobs",
                                                             "depot.jobs"}
    assert {job.name for job in jobs.SCHEDULE} == {
        "heartbeat", "prune_sign_in_records", "roll_up_hours", "mark_silent",
        "prune_raw_readings", "prune_dead_letters", "audit_checkpoint", "sweep_warnings",
        "refresh_plan", "prune_positions", "change_shift", "roster_notices",
        "remind_overdue", "watch_expiry"}
    assert all(job.name == job.func.__name__ or job.name == "heartbeat" for job in jobs.SCHEDULE)
