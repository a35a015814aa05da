"""Every periodic job of the hub and every consumer of the worker's MQTT connection, in one place
(DESIGN §3). The job bodies live in their packages' `jobs.py`; this list only schedules them."""

from __future__ import annotations

from datetime import timedelta

from alerts import channels
from alerts import jobs as alerts
from depot import jobs as depot
from dispatch.core import audit
from dispatch.core import jobs as kernel
from dispatch.core.runtime import Job
from dispatch.evacuation import jobs as evacuation
from dispatch.positions import jobs as positions
from dispatch.roster import jobs as roster
from telemetry import bridge
from telemetry import jobs as telemetry

# What consumes the worker's MQTT connection (each returns its stop function): the ingest,
# alerts' channels (the retained village warnings, the webhooks), alerts' evaluator, the
# evacuation planner (it re-plans where the alerts are raised) and the phones' OwnTracks
# positions.
SUBSCRIBERS = [bridge.attach, channels.attach, alerts.attach, evacuation.attach,
               positions.attach]

SCHEDULE = [
    Job("heartbeat", kernel.beat, timedelta(seconds=10)),
    Job("prune_sign_in_records", kernel.prune_sign_in_records, timedelta(minutes=30)),
    Job("roll_up_hours", telemetry.roll_up_hours, timedelta(minutes=1), own_process=True),
    Job("mark_silent", telemetry.mark_silent, timedelta(minutes=1)),
    # Judges every warning subject (time passing clears alerts) and takes due escalations.
    Job("sweep_warnings", alerts.sweep_warnings, timedelta(seconds=15)),
    # A new plan version when levels, roads or shelters changed in another process.
    Job("refresh_plan", evacuation.refresh_plan, timedelta(seconds=5)),
    # Duty statuses at shift change; gaps and expiring certificates told to the commander.
    Job("change_shift", roster.change_shift, timedelta(minutes=1)),
    Job("roster_notices", roster.roster_notices, timedelta(minutes=15)),
    # Overdue check-outs and expiring items (extinguishers, medical supplies), each told once.
    Job("remind_overdue", depot.remind_overdue, timedelta(hours=1)),
    Job("watch_expiry", depot.watch_expiry, timedelta(hours=1)),
    Job("prune_raw_readings", telemetry.prune_raw_readings, timedelta(hours=1),
        own_process=True),
    Job("prune_dead_letters", telemetry.prune_dead_letters, timedelta(hours=1),
        own_process=True),
    Job("prune_positions", positions.prune_positions, timedelta(hours=1), own_process=True),
    # Its own process: the first checkpoint of a hub hashes the whole chain.
    Job("audit_checkpoint", kernel.audit_checkpoint, audit.CHECKPOINT_EVERY, own_process=True),
]
