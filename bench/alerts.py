"""Benchmark: warnings through the real hub process (issue #19, "Performance").

Per backend (SpatiaLite, PostGIS on RESCUEHUB_TEST_DATABASE_URL's server), on a fresh data directory
after `rescuehub demo --scale prefecture` (103 townships, 1,106 villages), with `rescuehub run` as
the hub and the broker, gateways and reference of bench/ingest.py (imported from it: the broker
started with the hub's own code and template, mqtt.managed = false, one login per connection):

- every village gets one rain gauge of the bench inside it (reporting every GRID_S, 5 min), and a
  critical-rainfall table: the one it has, else one PUT over `PUT /api/v1/villages/{code}/
  thresholds` as the bench commander (the SL 675 practice numbers of alerts.demo, the village's
  gauge named), so the evaluator judges 1,106 villages and 1,106 gauges;
- a dry backlog (0 mm every 5 min for the longest window and an hour more, sent in batches) makes
  every window ending now complete, so no village starts with a `data` alert; before the latency
  part a top-up (same step) brings every gauge's newest report to within GRID_S of a minute ago;
- throughput: single dry readings of the load gauges published flat out, stored readings/s with
  the rules on, as the ratio to the bare paho subscriber measured in the same run with the same
  messages (bench/ingest.py's reference; target >= 0.6): before the hub ever ran and again
  after it stopped (its persistent session ended), the ratio to the mean of the two;
- latency: under LOAD_RATE dry readings/s on the load gauges, one probe per probe village (each
  its own village and gauge, from their own gateway login): one reading with enough rain that the
  village's shortest window reaches `evacuate` in every soil state. From its publish to (a) the
  `alert` event ("raised", kind flash_flood, subject the village) at a Socket.IO client on /live
  with the commander's token, and (b) the retained `rescuehub/v1/warnings/{village}` message with
  level "evacuate" at an MQTT subscriber with an observer login (mqtt.observers); p50 and p99,
  target p99 < 500 ms. The load's readings follow each gauge's newest (in order, as in the
  field), so they change no window: they only make the evaluator judge their gauges and villages.
  `--load-rate 0` gives the same probes on an idle hub (the evaluator's own cost, and its 15 s
  sweep of every subject).

Run: .venv/bin/python bench/alerts.py [--quick] [--db spatialite|postgis|both]
     [--part throughput|latency|all] [--probes N]
Progress goes to stderr, the figures table to stdout. The machine's other load changes the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ingest
from ingest import (
    PROBE_GATEWAY,
    REFERENCE_OBSERVER,
    BenchError,
    Children,
    LiveClient,
    Row,
    Setup,
    api,
    counter,
    log,
    percentile,
    verdict,
)

ingest.LOG_NAME = "alerts"

TARGET_P99_MS = 500.0
TARGET_RATIO = 0.6
LOAD_RATE = 1000.0  # readings/s of the latency part's background load
GRID_S = 300  # every bench gauge's registered interval: one report every 5 min
WARNINGS_OBSERVER = "bench-warnings"  # the warnings subscriber's read-only login
WARNINGS_TOPIC = "rescuehub/v1/warnings/{}"
WAIT_EVENTS_S = 30.0  # how long after the last publish a probe's alert may still come


@dataclass(frozen=True)
class Sizes:
    probes: int
    probe_every_s: float
    singles: int


FULL = Sizes(probes=200, probe_every_s=0.5, singles=50000)
QUICK = Sizes(probes=50, probe_every_s=0.5, singles=20000)


# --- the warnings subscriber (a child process, spawned) ---------------------------------------

def warnings_subscriber_process(spec: dict, stop, results) -> None:
    """An MQTT subscriber on the village warning topics: the arrival (monotonic) of the first
    live (not retained) message with level `evacuate` for each village, until `stop`."""
    try:
        client = ingest._mqtt_client(spec["client_id"], spec["username"], spec["password"])
        lock, subscribed = threading.Lock(), threading.Event()
        state: dict = {"first": {}, "messages": 0, "retained": 0, "other": 0, "bad": 0}

        def on_message(_c, _u, message):
            now = time.monotonic()
            with lock:
                state["messages"] += 1
                if message.retain:
                    state["retained"] += 1
                    return
                try:
                    level = json.loads(message.payload)["level"]
                except (ValueError, KeyError, TypeError):
                    state["bad"] += 1
                    return
                village = message.topic.rsplit("/", 1)[1]
                if level == "evacuate":
                    state["first"].setdefault(village, now)
                else:
                    state["other"] += 1

        client.on_message = on_message
        client.on_subscribe = lambda *_: subscribed.set()
        ingest._connect(client, spec["host"], spec["port"])
        client.subscribe(WARNINGS_TOPIC.format("+"), qos=1)
        if not subscribed.wait(10):
            raise BenchError("the broker did not answer the subscription")
        results.put(("ready", "warnings", None))
        stop.wait()
        with lock:
            report = {k: (dict(v) if isinstance(v, dict) else v) for k, v in state.items()}
        client.disconnect()
        client.loop_stop()
        results.put(("done", "warnings", report))
    except BaseException as exc:
        results.put(("error", "warnings", f"{type(exc).__name__}: {exc}"))


class AlertClient(LiveClient):
    """The /live client of bench/ingest.py, stamping the first `alert` event raised for each
    watched village's flash flood instead of `reading` events."""

    def __init__(self, base: str, token: str, villages: set[str]):
        self.villages = villages
        self.raised: dict[str, tuple[float, float, str]] = {}  # village -> (got, emitted, level)
        self.alert_events = 0
        super().__init__(base, token, prefix="\x00")

    def event(self, frame: str, now: float) -> None:
        if '["alert"' not in frame[:20]:
            return
        self.alert_events += 1
        data = json.loads(frame[len("42/live,"):])[1]
        alert = data.get("alert") or {}
        code = (alert.get("subject") or {}).get("code")
        if (data.get("event") == "raised" and alert.get("kind") == "flash_flood"
                and code in self.villages and code not in self.raised):
            self.raised[code] = (now, ingest.emitted_at(data["id"]), alert.get("level"))


# --- the plan: gauges, tables, timestamps ----------------------------------------------------

@dataclass
class Plan:
    """Each village's bench gauge and table, the probe villages, and each gauge's newest
    planned reading (so every reading of a gauge is newer than the ones before it)."""

    gauge: dict[str, str]  # village -> its gauge's code
    point: dict[str, tuple[float, float]]  # village -> a point inside it (lon, lat)
    table: dict[str, dict | None]  # village -> its stored table (None: the bench PUTs one)
    probes: list[str]  # probe villages, in the order they are probed
    load: list[str]  # the load gauges' codes
    owner: dict[str, str]  # gauge -> gateway
    cursor: dict[str, datetime] = field(default_factory=dict)
    seq: int = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


def read_villages(setup: Setup) -> tuple[dict[str, tuple[float, float]], dict[str, dict | None]]:
    """Every village's code, a point inside it, and its threshold table if it has one."""
    from geoalchemy2.shape import to_shape
    from sqlalchemy import select

    from alerts.models import VillageThreshold
    from dispatch.core.db import db
    from maps.models import Village

    with setup.app.app_context():
        try:
            s = db.session
            points = {}
            for code, boundary in s.execute(select(Village.code, Village.boundary)):
                point = to_shape(boundary).representative_point()
                points[code] = (round(point.x, 6), round(point.y, 6))
            tables = dict(s.execute(select(Village.code, VillageThreshold.table).join(
                VillageThreshold, VillageThreshold.village_id == Village.id)).all())
        finally:
            db.remove()
    return points, {code: tables.get(code) for code in points}


def make_plan(setup: Setup, probes: int, rng: random.Random) -> Plan:
    """One gauge per village; the probes in villages whose table (if any) takes that gauge."""
    points, tables = read_villages(setup)
    usable = [c for c in sorted(points)
              if tables[c] is None or not tables[c].get("gauges")]
    if len(usable) < probes:
        raise BenchError(f"only {len(usable)} villages can take a probe; asked for {probes}")
    chosen = set(rng.sample(usable, probes))
    probe_villages = sorted(chosen)
    rng.shuffle(probe_villages)
    gateways = sorted(setup.gateways)
    gauge, owner, load = {}, {}, []
    for i, code in enumerate(sorted(chosen)):
        gauge[code] = f"BP-{i + 1:03d}"
        owner[gauge[code]] = PROBE_GATEWAY
    for i, code in enumerate(c for c in sorted(points) if c not in chosen):
        gauge[code] = f"BV-{i + 1:04d}"
        owner[gauge[code]] = gateways[i % len(gateways)]
        load.append(gauge[code])
    return Plan(gauge, points, tables, probe_villages, load, owner)


def longest_window_h(plan: Plan) -> float:
    return max([6.0, *(max(t["windows_h"]) for t in plan.table.values() if t)])


def evacuate_mm(table: dict) -> float:
    """Rain in one report that takes the table's shortest window to `evacuate` in any soil."""
    return float(max(row[0] for row in table["evacuate"].values())) + 1.0


def bench_table(gauge: str) -> dict:
    """The table the bench gives a village without one: alerts.demo's SL 675 practice numbers."""
    from alerts.demo import EVACUATE_MM, PREPARE_SHARE
    from alerts.thresholds import DEFAULT_ANTECEDENT_MM, DEFAULT_WINDOWS_H, SOILS

    evacuate = {soil: list(EVACUATE_MM[soil]) for soil in SOILS}
    return {"gauges": [gauge], "windows_h": list(DEFAULT_WINDOWS_H),
            "prepare": {soil: [round(mm * PREPARE_SHARE) for mm in evacuate[soil]]
                        for soil in SOILS},
            "evacuate": evacuate, "antecedent_mm": dict(DEFAULT_ANTECEDENT_MM)}


def _payload(gauge: str, ts: datetime, value: float, seq: int) -> dict:
    return ingest._reading(gauge, ts, value, seq)


def fill(plan: Plan, gauges: list[str], since: datetime | None, until: datetime) -> dict:
    """Dry reports every GRID_S for these gauges from their newest (or from `since`) up to
    `until`, as batches of at most 1,000 readings per gateway: {gateway: [payloads]}."""
    per_gateway: dict[str, list[dict]] = {}
    for gauge in gauges:
        ts = plan.cursor.get(gauge, since)
        ts = ts + timedelta(seconds=GRID_S) if gauge in plan.cursor else ts
        while ts <= until:
            per_gateway.setdefault(plan.owner[gauge], []).append(
                _payload(gauge, ts, 0.0, plan.next_seq()))
            plan.cursor[gauge] = ts
            ts += timedelta(seconds=GRID_S)
    return {g: [json.dumps({"readings": items[i:i + 1000]}, separators=(",", ":")).encode()
                for i in range(0, len(items), 1000)]
            for g, items in per_gateway.items()}


def singles(plan: Plan, total: int) -> dict[str, list[bytes]]:
    """`total` dry single readings, round-robin over the load gauges, each a second after its
    gauge's newest: {gateway: [payloads]}."""
    out: dict[str, list[bytes]] = {g: [] for g in set(plan.owner.values()) - {PROBE_GATEWAY}}
    for n in range(total):
        gauge = plan.load[n % len(plan.load)]
        ts = plan.cursor[gauge] + timedelta(seconds=1)
        plan.cursor[gauge] = ts
        out[plan.owner[gauge]].append(json.dumps(
            _payload(gauge, ts, 0.0, plan.next_seq()), separators=(",", ":")).encode())
    return out


def specs(setup: Setup, plan: dict[str, list[bytes]], rate_total: float | None = None) -> list:
    """bench/ingest.py's publisher specs, the probe gateway's login included."""
    load = {g: p for g, p in plan.items() if g != PROBE_GATEWAY}
    out = ingest.gateway_specs(setup, load, rate_total=rate_total)
    if plan.get(PROBE_GATEWAY):
        out.append(_probe_spec(setup, PROBE_GATEWAY, plan[PROBE_GATEWAY]))
    return out


def _probe_spec(setup: Setup, name: str, payloads: list[bytes], **extra) -> dict:
    return {"name": name, "client_id": PROBE_GATEWAY, "username": PROBE_GATEWAY,
            "password": setup.probe_password, "host": "127.0.0.1", "port": setup.mqtt_port,
            "topic": ingest.READINGS_TOPIC.format(PROBE_GATEWAY), "payloads": payloads, **extra}


def send_and_store(setup: Setup, plan: dict[str, list[bytes]], label: str) -> float:
    """Publish these messages flat out and wait until the hub stored all their readings;
    returns the seconds it took."""
    total = sum(p.count(b'"sensor"') for payloads in plan.values() for p in payloads)
    if not total:
        return 0.0
    baseline = counter(setup, "rescuehub_readings_stored_total")
    children = Children()
    try:
        run = ingest.publish(specs(setup, plan), children, timeout=600)
        run["wait"]()
    finally:
        children.close()
    done_at, samples = ingest.wait_stored(setup, total, baseline=baseline)
    if done_at is None:
        raise BenchError(f"{label}: the hub stalled at {samples[-1][1] if samples else 0:.0f} "
                         f"of {total} readings stored")
    seconds = done_at - run["t0"]
    log(f"{setup.label}: {label}: {total} readings stored in {seconds:.1f} s")
    return seconds


# --- set-up over the API ---------------------------------------------------------------------

def register(setup: Setup, plan: Plan) -> None:
    """Register every bench gauge in its village over the API."""
    started = time.monotonic()
    bodies = [{"code": gauge, "kind": "rain_gauge", "unit": "mm", "gateway": plan.owner[gauge],
               "name": f"bench {gauge}", "interval_s": GRID_S, "village": village,
               "lon": plan.point[village][0], "lat": plan.point[village][1]}
              for village, gauge in sorted(plan.gauge.items())]
    ingest.post_all(setup, "POST", [("/api/v1/sensors", body) for body in bodies])
    log(f"{setup.label}: {len(bodies)} bench gauges registered over the API in "
        f"{time.monotonic() - started:.1f} s")


def put_tables(setup: Setup, plan: Plan) -> int:
    """PUT a table for every village without one; returns how many."""
    started = time.monotonic()
    missing = [v for v, t in plan.table.items() if t is None]
    ingest.post_all(setup, "PUT", [(f"/api/v1/villages/{v}/thresholds",
                                    bench_table(plan.gauge[v])) for v in missing])
    for village in missing:
        plan.table[village] = bench_table(plan.gauge[village])
    log(f"{setup.label}: {len(missing)} threshold tables PUT over the API in "
        f"{time.monotonic() - started:.1f} s ({len(plan.table) - len(missing)} were there)")
    return len(missing)


def wait_index(hub: ingest.Hub, villages: int, timeout: float = 120.0) -> None:
    """Wait until the hub's evaluator judges every village (its log says so after a sweep)."""
    pattern = re.compile(r"alerts: judging (\d+) gauges, (\d+) villages")
    deadline, started = time.monotonic() + timeout, time.monotonic()
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            found = pattern.findall(hub.log_path.read_text(errors="replace"))
            if found and int(found[-1][1]) >= villages:
                log(f"{hub.setup.label}: the evaluator judges {found[-1][0]} gauges and "
                    f"{found[-1][1]} villages ({time.monotonic() - started:.1f} s after the "
                    f"tables)")
                return
        time.sleep(0.5)
    raise BenchError(f"the evaluator did not take the {villages} villages' tables within "
                     f"{timeout:.0f} s: {hub.tail()}")


def active_alerts(setup: Setup) -> dict[str, int]:
    """Active alerts by kind."""
    counts: dict[str, int] = {}
    for item in api(setup, "GET", "/api/v1/alerts").json()["items"]:
        counts[item["kind"]] = counts.get(item["kind"], 0) + 1
    return counts


# --- the latency part ------------------------------------------------------------------------

def latency(setup: Setup, plan: Plan, sizes: Sizes, load_rate: float) -> dict:
    """Probe readings -> `alert` event and retained warning, under background load."""
    now = datetime.now(UTC).replace(microsecond=0)
    top_up = fill(plan, list(plan.owner), None, now - timedelta(seconds=60))
    send_and_store(setup, top_up, "top-up (every gauge's windows complete again)")
    before = active_alerts(setup)
    warmup = 2.0
    count = len(plan.probes)
    seconds = warmup + count * sizes.probe_every_s + 1.0
    load = singles(plan, int(load_rate * seconds))
    probe_ts = datetime.now(UTC).replace(microsecond=0)
    probe_payloads = []
    for village in plan.probes:
        gauge = plan.gauge[village]
        if probe_ts <= plan.cursor[gauge]:
            raise BenchError(f"{gauge} has a reading at or after {probe_ts.isoformat()}")
        probe_payloads.append(json.dumps(_payload(
            gauge, probe_ts, evacuate_mm(plan.table[village]), plan.next_seq())).encode())
    children = Children()
    stop = children.ctx.Event()
    client = AlertClient(setup.base, setup.token, set(plan.probes))
    baseline = counter(setup, "rescuehub_readings_stored_total")
    try:
        if not client.hello.wait(10) or client.failed:
            raise BenchError(f"no `hello` from the Socket.IO server: {client.failed}")
        children.start(warnings_subscriber_process, {
            "client_id": WARNINGS_OBSERVER, "username": WARNINGS_OBSERVER,
            "password": setup.warnings_password, "host": "127.0.0.1",
            "port": setup.mqtt_port}, stop, children.results)
        children.collect("ready", {"warnings"}, 60)
        load_specs = specs(setup, load, rate_total=load_rate)
        load_specs.append(_probe_spec(setup, "probe", probe_payloads,
                                      rate=1.0 / sizes.probe_every_s, delay=warmup, probe=True))
        run = ingest.publish(load_specs, children, timeout=seconds + 120)
        sent = run["wait"]()
        log(f"{setup.label}: latency: {sent['readings']} readings published in "
            f"{sent['seconds']:.1f} s; waiting for the probes' alerts")
        waited_from, seen = time.monotonic(), -1
        while time.monotonic() - waited_from < WAIT_EVENTS_S and len(client.raised) < count:
            if len(client.raised) != seen:
                seen, waited_from = len(client.raised), time.monotonic()
            time.sleep(0.2)
        time.sleep(1.0)  # the retained messages follow the events
        stop.set()
        warnings = children.collect("done", {"warnings"}, 30)["warnings"]
        done_at, _ = ingest.wait_stored(setup, sent["readings"], baseline=baseline, stall_s=20)
    finally:
        stop.set()
        children.close()
        client.close()
    published = sent["reports"]["probe"]["probes"]
    a = [(client.raised[v][0] - t) * 1000 for v, t in zip(plan.probes, published, strict=True)
         if v in client.raised]
    hub_ms = [(client.raised[v][1] - t) * 1000
              for v, t in zip(plan.probes, published, strict=True) if v in client.raised]
    b = [(warnings["first"][v] - t) * 1000 for v, t in zip(plan.probes, published, strict=True)
         if v in warnings["first"]]
    levels = [client.raised[v][2] for v in plan.probes if v in client.raised]
    load_s = max((r["t_last"] - run["t0"] for n, r in sent["reports"].items()
                  if n != "probe" and r["total"]), default=0.0)
    result = {"a": a, "b": b, "probes": count, "hub_ms": hub_ms,
              "not_evacuate": sum(1 for lv in levels if lv != "evacuate"),
              "load_rate": (sent["readings"] - count) / load_s if load_s else 0.0,
              "stored": done_at is not None,
              "before": before, "after": active_alerts(setup), "warnings": warnings,
              "alert_events": client.alert_events}
    _log_latency(setup, result)
    return result


def _stats(values: list[float]) -> str:
    if not values:
        return "none"
    return (f"p50 {percentile(values, 0.5):.1f} ms p99 {percentile(values, 0.99):.1f} ms "
            f"max {max(values):.1f} ms")


def _log_latency(setup: Setup, r: dict) -> None:
    log(f"{setup.label}: latency: publish -> alert event ({len(r['a'])} of {r['probes']}): "
        f"{_stats(r['a'])}; publish -> hub's emit {_stats(r['hub_ms'])}")
    log(f"{setup.label}: latency: publish -> retained warning ({len(r['b'])} of "
        f"{r['probes']}): {_stats(r['b'])}; subscriber got {r['warnings']['messages']} "
        f"messages ({r['warnings']['retained']} retained, {r['warnings']['other']} other "
        f"levels)")
    log(f"{setup.label}: latency: background {r['load_rate']:,.0f} readings/s; active alerts "
        f"before {r['before'] or 'none'}, after {r['after']}; {r['alert_events']} alert events")


# --- per backend -----------------------------------------------------------------------------

def run_backend(label: str, url: str, tmp: Path, args, sizes: Sizes) -> list[Row]:
    data_dir = tmp / f"var-{label.lower()}"
    web_port, mqtt_port = ingest.free_port(), ingest.free_port()
    env = ingest.hub_env(data_dir, url, web_port, mqtt_port, args.hub_protocol,
                         [REFERENCE_OBSERVER, WARNINGS_OBSERVER])
    setup = Setup(label, url, data_dir, env, web_port, mqtt_port)
    rows: list[Row] = []
    parts = {"throughput", "latency"} if args.part == "all" else {args.part}
    rng = random.Random(19)
    with contextlib.ExitStack() as stack:
        hub = ingest.prepare(setup, stack, demo=("demo", "--scale", "prefecture"))
        from dispatch.core.runtime import observer_password

        setup.warnings_password = observer_password(setup.app.config["SETTINGS"],
                                                    WARNINGS_OBSERVER)
        plan = make_plan(setup, sizes.probes, rng)
        # Every reading is planned before it is sent, newest last per gauge: the dry backlog,
        # then the throughput's singles (fixed before the reference, which runs before the
        # hub ever connects, so its persistent session queues none of it).
        now = datetime.now(UTC).replace(microsecond=0)
        hours = longest_window_h(plan) + 1.0
        backlog = fill(plan, list(plan.owner), now - timedelta(hours=hours),
                       now - timedelta(seconds=60))
        throughput = singles(plan, sizes.singles) if "throughput" in parts else {}
        if throughput:
            ref = ingest.reference(setup, throughput, "singles", args.hub_protocol)
        hub.start()
        hub.wait_ready()
        log(f"{setup.label}: hub up (rescuehub run, pid {hub.proc.pid}, web port {web_port}); "
            f"{len(plan.gauge)} villages, {len(plan.probes)} probe villages")
        ingest.sign_in(setup)
        register(setup, plan)
        send_and_store(setup, backlog, f"dry backlog ({hours:g} h every {GRID_S} s)")
        put_tables(setup, plan)
        wait_index(hub, len(plan.table))
        if throughput:
            before = active_alerts(setup)
            got = ingest.through_hub(setup, throughput, "singles, rules on")
            after = active_alerts(setup)
        if "latency" in parts:
            latency_rows = _latency_rows(label, latency(setup, plan, sizes, args.load_rate))
        if throughput:
            # The reference again, with the hub gone: the ratio is to the mean of the two, so
            # that the machine's speed drifting between them (seen here: the bare subscriber's
            # rate from 7,000 to 20,000/s within the hour) shows, and weighs less.
            hub.stop()
            end_hub_session(setup, args.hub_protocol)
            again = ingest.reference(setup, throughput, "singles, after the hub",
                                     args.hub_protocol)
            rows += _throughput_rows(label, args, got, ref, again, before, after)
        if "latency" in parts:
            rows += latency_rows
    return rows


def end_hub_session(setup: Setup, protocol: str) -> None:
    """End the persistent MQTT session a stopped hub leaves on the broker (connect once as the
    hub with a clean one): else the broker queues every later message for it."""
    from dispatch.core.runtime import hub_mqtt_client_id, hub_mqtt_password

    settings = setup.app.config["SETTINGS"]
    client = ingest._mqtt_client(hub_mqtt_client_id(settings), settings.mqtt.username,
                                 hub_mqtt_password(settings), protocol)
    ingest._connect(client, "127.0.0.1", setup.mqtt_port)
    client.disconnect()
    client.loop_stop()


def _throughput_rows(label: str, args, got: dict, ref: dict, again: dict, before: dict,
                     after: dict) -> list[Row]:
    bare = (ref["rate"] + again["rate"]) / 2
    ratio = got["rate"] / bare
    lossless = got["stored"] == got["published"] and not got["letters"] and not got["duplicates"]
    return [
        Row(label, "stored singles/s, rules on", f"{got['rate']:,.0f}/s", "(info)",
            verdict(None), f"published at {got['publish_rate']:,.0f}/s; active alerts before "
                           f"{before or 'none'}, after {after or 'none'}"),
        Row(label, f"ratio to bare paho {args.hub_protocol}, rules on", f"{ratio:.2f}",
            f">= {TARGET_RATIO}", verdict(ratio >= TARGET_RATIO),
            f"bare {bare:,.0f}/s: {ref['rate']:,.0f}/s before the hub, {again['rate']:,.0f}/s "
            f"after it (publishers {ref['publish_rate']:,.0f} and "
            f"{again['publish_rate']:,.0f}/s)"),
        Row(label, "lost readings, singles", f"{got['published'] - got['stored']}", "0",
            verdict(lossless), f"published {got['published']}, stored {got['stored']}, dead "
                               f"letters {got['letters']}, duplicates {got['duplicates']:.0f}"),
    ]


def _latency_rows(label: str, got: dict) -> list[Row]:
    rows = []
    for key, name in (("a", "publish -> alert event"), ("b", "publish -> retained warning")):
        values, missed = got[key], got["probes"] - len(got[key])
        p50 = percentile(values, 0.5) if values else float("inf")
        p99 = percentile(values, 0.99) if values else float("inf")
        rows.append(Row(label, f"{name} p50", f"{p50:.1f} ms", "", verdict(None),
                        f"{len(values)} of {got['probes']} probes under "
                        f"{got['load_rate']:,.0f} readings/s"))
        rows.append(Row(label, f"{name} p99", f"{p99:.1f} ms", f"< {TARGET_P99_MS:.0f} ms",
                        verdict(p99 < TARGET_P99_MS and not missed),
                        f"missed {missed}; max {max(values, default=float('inf')):.1f} ms"
                        + ("" if key == "b" else
                           f"; raised at another level {got['not_evacuate']}")))
    return rows


def print_table(rows: list[Row], args, sizes: Sizes, seconds: float) -> None:
    ingest.print_rows("alerts.py", f"{'quick' if args.quick else 'full'}; prefecture, "
                                   f"{sizes.probes} probes, {sizes.singles} singles; "
                                   f"{seconds:.0f} s", rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer probes and singles")
    parser.add_argument("--hub-protocol", choices=["3.1.1", "5"], default="3.1.1",
                        help="the hub's own MQTT protocol (setting mqtt.protocol)")
    parser.add_argument("--db", choices=["spatialite", "postgis", "both"], default="both")
    parser.add_argument("--part", choices=["throughput", "latency", "all"], default="all")
    parser.add_argument("--probes", type=int, default=None,
                        help="probe villages (default 200, 50 with --quick)")
    parser.add_argument("--load-rate", type=float, default=LOAD_RATE,
                        help="readings/s of the background load (default 1000; the targets "
                             "assume 1000)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the data directories and the hub's log (path in the log)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.probes is not None:
        if not 1 <= args.probes <= 1000:
            parser.error("--probes must be 1-1000")
        sizes = Sizes(args.probes, sizes.probe_every_s, sizes.singles)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, ingest._interrupt)
    started = time.monotonic()
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="rescuehub-bench-alerts-"))
    tmp.chmod(0o755)  # a root hub's broker runs as `mosquitto` and must reach its directory
    try:
        if args.db in ("spatialite", "both"):
            rows += run_backend("SpatiaLite", "", tmp, args, sizes)
        if args.db in ("postgis", "both"):
            rows += ingest.run_postgis(tmp, args, sizes, runner=run_backend)
    except BenchError as exc:
        log(f"stopped: {exc}")
        print_table(rows, args, sizes, time.monotonic() - started)
        return 1
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    finally:
        if args.keep:
            log(f"kept {tmp} (hub-*.log: the hub's output)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows, args, sizes, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
