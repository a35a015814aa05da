"""Benchmark: the consolidated depot through the real hub process (issue #22, "Performance").

Per backend (SpatiaLite, PostGIS on RESCUEHUB_TEST_DATABASE_URL's server), on a fresh data directory
after `rescuehub demo --scale prefecture` (103 townships' depots: 11,292 items with a year of
history: inspections, repairs, check-outs, the stock ledger), with `rescuehub run` as the hub (the
broker and the hub started as bench/ingest.py starts them, whose helpers this script shares):

- keepers: KEEPERS (4) keepers at once, each in a process of its own (four tablets, not four
  threads sharing the bench's interpreter) with its own login (a bearer token) and HTTP
  connection, each with its own share of the serviceable items (so that they never race each
  other here), repeat --cycles times: scan 1-3 items (each a `GET
  /api/v1/depot/scan?code=&want=item`, what the check-out page sends for a scanned code: the
  item with whether it may go out and why), for a --page share of them (default 0.25) open the
  item's page (`GET /api/v1/depot/items/{code}`, the item with its whole history), for a --typed
  share (default 0.25) search for the code as typing does (`GET /api/v1/depot/items?q=`), check
  them out to a team of the item's township (`POST /api/v1/depot/checkouts`) and check them back
  in (`POST /api/v1/depot/checkins`, condition ok). p50 and p99 of each request, as the keeper's
  client waits for it (target p99 < 50 ms for the scan and the check-out);
- reference, in the same run: `GET /healthz` by the same 4 keepers' connections at once (the
  round trip through the same server, auth and middleware, no database), and a bare `SELECT` of
  one item by its code through the same driver from this process (the database's floor). Each
  request's p50 is printed as the ratio to the /healthz p50;
- race: --rounds (1,000) rounds, each two keepers checking out the same serviceable item at the
  same instant (two threads released by a barrier, each its own connection): exactly one must
  get 201 and the other a clean 409 `unavailable` naming the item as `out`. Printed: double
  check-outs (must be 0), clean refusals, anything else; then the database is asked whether any
  item has more than one open check-out line. The item is checked back in after each round.

A double check-out makes the run exit 1; a slow figure never does. Progress goes to stderr, the
figures table to stdout.

Run: .venv/bin/python bench/depot.py [--backend spatialite|postgis|both] [--cycles 250]
     [--page 0.25] [--typed 0.25] [--pause 0] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import queue
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import ingest
from ingest import (
    REFERENCE_OBSERVER,
    BenchError,
    Row,
    Setup,
    api,
    free_port,
    hub_env,
    log,
    percentile,
    prepare,
    print_rows,
    run_postgis,
    sign_in,
    verdict,
)

from dispatch.core.heap import SETTLE_AGAIN_S  # noqa: E402

ingest.LOG_NAME = "depot"

KEEPERS = 4
TARGET_P99_MS = 50.0
# The issue's target is for a scan and a check-out (and its check-in); the item's page and a
# typed search are printed beside them.
TARGETED = ("scan", "checkout", "checkin")
ITEMS_PER_KEEPER = 300  # each keeper's share of the serviceable items
FLOOR_QUERIES = 500  # bare SELECTs of the reference
PASSWORD = "bench keeper password 2026"
OPERATIONS = (
    ("scan", "scan → item, GET /api/v1/depot/scan?want=item"),
    ("lookup", "item page, GET /api/v1/depot/items/{code} (with its history)"),
    ("search", "typed code → GET /api/v1/depot/items?q="),
    ("checkout", "check-out of 1-3 items, POST /api/v1/depot/checkouts"),
    ("checkin", "check-in of them, POST /api/v1/depot/checkins"),
)


@dataclass
class Keeper:
    """One keeper of the bench: a login, a token, a connection and a share of the items."""

    name: str
    token: str
    items: list[str] = field(default_factory=list)
    times: dict[str, list[float]] = field(default_factory=dict)
    session: object = None

    def request(self, setup: Setup, method: str, path: str, expect: tuple[int, ...],
                kind: str | None = None, **kwargs):
        """One request on this keeper's connection, timed into `kind`."""
        import requests

        if self.session is None:
            self.session = requests.Session()
            self.session.headers["Authorization"] = f"Bearer {self.token}"
        started = time.perf_counter()
        answer = self.session.request(method, setup.base + path, timeout=30, **kwargs)
        took = time.perf_counter() - started
        if answer.status_code not in expect:
            raise BenchError(f"{self.name}: {method} {path}: {answer.status_code} "
                             f"{answer.text[:300]}")
        if kind is not None:
            self.times.setdefault(kind, []).append(took)
        return answer


def make_keepers(setup: Setup, count: int) -> list[Keeper]:
    """`count` keepers with passwords and bearer tokens (in the database, as `rescuehub user
    add` and POST /api/v1/auth/token would leave them)."""
    from dispatch.core import auth
    from dispatch.core.db import db

    keepers = []
    with setup.app.app_context():
        with db.transaction() as s:
            for k in range(count):
                user, _ = auth.create_user(s, f"bench-keeper-{k + 1}", "keeper", actor="bench")
                auth.change_password(s, user, PASSWORD)
                token, _ = auth.issue_user_token(s, user, 6 * 3600)
                keepers.append(Keeper(user.username, token))
        db.remove()
    return keepers


def serviceable_items(setup: Setup) -> dict[str, list[str]]:
    """The items that may go out today and for the next week (in stock, inspection and expiry
    not due), by township (the code's first part), shuffled."""
    from sqlalchemy import and_, or_, select

    from depot.models import Item
    from dispatch.core.db import db

    zone = ZoneInfo(setup.app.config["SETTINGS"].roster.timezone)
    safe = datetime.now(zone).date() + timedelta(days=7)
    with setup.app.app_context():
        try:
            codes = db.session.scalars(select(Item.code).where(and_(
                Item.status == "in_stock",
                or_(Item.inspection_due.is_(None), Item.inspection_due >= safe),
                or_(Item.expires.is_(None), Item.expires >= safe))).order_by(Item.code)).all()
        finally:
            db.remove()
    by_town: dict[str, list[str]] = {}
    for code in codes:
        by_town.setdefault(code.split("-")[0], []).append(code)
    rng = random.Random(22)
    for items in by_town.values():
        rng.shuffle(items)
    log(f"{setup.label}: {len(codes):,} serviceable items in {len(by_town)} townships")
    return by_town


def count_items(setup: Setup) -> tuple[int, int]:
    """(items, items with more than one open check-out line) straight from the database."""
    from sqlalchemy import func, select

    from depot.models import CheckoutLine, Item
    from dispatch.core.db import db

    with setup.app.app_context():
        try:
            s = db.session
            items = s.scalar(select(func.count()).select_from(Item))
            doubled = s.scalar(select(func.count()).select_from(
                select(CheckoutLine.item_id).where(CheckoutLine.item_id.is_not(None),
                                                   CheckoutLine.returned_at.is_(None))
                .group_by(CheckoutLine.item_id).having(func.count() > 1).subquery()))
        finally:
            db.remove()
    return items, doubled


def floor_queries(setup: Setup, codes: list[str]) -> list[float]:
    """The reference floor: a bare SELECT of one item by code through the hub's driver."""
    from sqlalchemy import select

    from depot.models import Item
    from dispatch.core.db import db

    times = []
    with setup.app.app_context():
        try:
            conn = db.session.connection()
            query = select(Item.id, Item.status).where(Item.code == codes[0])
            conn.execute(query).all()  # warm: the connection and the statement cache
            for code in codes[:FLOOR_QUERIES]:
                started = time.perf_counter()
                conn.execute(select(Item.id, Item.status).where(Item.code == code)).all()
                times.append(time.perf_counter() - started)
        finally:
            db.remove()
    return times


def teams_by_town(setup: Setup) -> dict[str, list[str]]:
    answer = api(setup, "GET", "/api/v1/teams").json()["items"]
    teams: dict[str, list[str]] = {}
    for team in answer:
        teams.setdefault(team["code"].split("-")[0], []).append(team["code"])
    if not teams:
        raise BenchError("the demo has no teams to check items out to")
    return teams


def run_keeper(setup: Setup, keeper: Keeper, teams: dict[str, list[str]], cycles: int,
               page: float, typed: float, pause: float, start, errors: list) -> None:
    """A keeper's work: scan (open the item's page for a `page` share of the items, search
    for a `typed` share), check out, check in, `cycles` times; `pause` seconds on average
    before each step (a person scanning the next label), 0: flat out."""
    rng = random.Random(keeper.name)

    def step() -> None:
        if pause:
            time.sleep(rng.uniform(0.5 * pause, 1.5 * pause))

    try:
        for code in keeper.items[:3]:  # warm this connection
            keeper.request(setup, "GET", f"/api/v1/depot/items/{code}", (200,))
        start.wait()
        for _ in range(cycles):
            codes = rng.sample(keeper.items, rng.randint(1, 3))
            for code in codes:
                step()
                keeper.request(setup, "GET", "/api/v1/depot/scan", (200,), "scan",
                               params={"code": code, "want": "item"})
                if rng.random() < page:
                    keeper.request(setup, "GET", f"/api/v1/depot/items/{code}", (200,),
                                   "lookup")
                if rng.random() < typed:
                    keeper.request(setup, "GET", "/api/v1/depot/items", (200,), "search",
                                   params={"q": code, "limit": 20})
            town = codes[0].split("-")[0]
            team = rng.choice(teams.get(town) or [t for ts in teams.values() for t in ts])
            step()
            keeper.request(setup, "POST", "/api/v1/depot/checkouts", (201,), "checkout",
                           json={"items": codes, "to": {"team": team}})
            step()
            keeper.request(setup, "POST", "/api/v1/depot/checkins", (200,), "checkin",
                           json={"items": [{"code": c, "condition": "ok"} for c in codes]})
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)
        with contextlib.suppress(threading.BrokenBarrierError):
            start.abort()


def run_healthz(setup: Setup, keeper: Keeper, count: int, start: threading.Barrier,
                errors: list) -> None:
    try:
        keeper.request(setup, "GET", "/healthz", (200,))
        start.wait()
        for _ in range(count):
            keeper.request(setup, "GET", "/healthz", (200,), "healthz")
    except BaseException as exc:
        errors.append(exc)
        with contextlib.suppress(threading.BrokenBarrierError):
            start.abort()


def together(target, setup: Setup, keepers: list[Keeper], *args) -> float:
    """Run `target(setup, keeper, *args, barrier, errors)` for each keeper in a process of its
    own (forked), released at once; each keeper's times come back into `keepers`. Returns the
    wall time from the release."""
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(len(keepers) + 1)
    answers = ctx.Queue()

    def child(k: int) -> None:
        errors: list = []
        target(setup, keepers[k], *args, start, errors)
        answers.put((k, keepers[k].times, repr(errors[0]) if errors else None))

    processes = [ctx.Process(target=child, args=(k,), daemon=True) for k in range(len(keepers))]
    for process in processes:
        process.start()
    try:
        start.wait(timeout=60)
    except threading.BrokenBarrierError:
        pass
    released = time.monotonic()
    errors = []
    for _ in processes:
        try:
            k, times, error = answers.get(timeout=3600)
        except queue.Empty:
            raise BenchError("a keeper's process gave no answer within an hour") from None
        keepers[k].times = times
        if error:
            errors.append(f"{keepers[k].name}: {error}")
    took = time.monotonic() - released
    for process in processes:
        process.join(timeout=10)
    if errors:
        raise BenchError(f"a keeper stopped: {errors[0]}")
    return took


@dataclass
class RaceCount:
    double: int = 0
    refused: int = 0
    other: list[str] = field(default_factory=list)


class Race:
    """Two keepers checking out one item at the same instant, round after round: two threads,
    each its own connection, released together by a barrier (the main thread the third party:
    it sets the item, then judges both answers)."""

    def __init__(self, setup: Setup, pair: tuple[Keeper, Keeper], teams: list[str]):
        self.setup, self.pair, self.teams = setup, pair, teams
        self.counted = RaceCount()
        self.answers: list = [None, None]
        self.barrier = threading.Barrier(3)
        self.stop = threading.Event()
        self.item = ""
        self.errors: list = []

    def side(self, n: int) -> None:
        keeper = self.pair[n]
        try:
            while True:
                self.barrier.wait()  # the item is set
                if self.stop.is_set():
                    return
                self.barrier.wait()  # both threads at the start line: go
                self.answers[n] = keeper.request(
                    self.setup, "POST", "/api/v1/depot/checkouts", (201, 409), f"race{n}",
                    json={"items": [self.item], "to": {"team": self.teams[n % len(self.teams)]}})
                self.barrier.wait()  # both answered
        except threading.BrokenBarrierError:
            return
        except BaseException as exc:  # reported by the main thread
            self.errors.append(exc)
            self.barrier.abort()

    def judge(self) -> None:
        """Count the round's answers; check the item back in when it went out."""
        statuses = sorted(a.status_code for a in self.answers)
        if statuses == [201, 201]:
            self.counted.double += 1
        elif statuses == [201, 409] and _clean_refusal(self.answers, self.item):
            self.counted.refused += 1
        else:
            self.counted.other.append(f"{statuses} {[a.text[:120] for a in self.answers]}")
        if 201 in statuses:
            self.pair[0].request(self.setup, "POST", "/api/v1/depot/checkins", (200,), json={
                "items": [{"code": self.item, "condition": "ok"}]})

    def run(self, items: list[str], rounds: int) -> RaceCount:
        threads = [threading.Thread(target=self.side, args=(n,), daemon=True) for n in (0, 1)]
        for thread in threads:
            thread.start()
        try:
            for r in range(rounds):
                self.item = items[r % len(items)]
                for _ in range(3):  # set, go, answered
                    self.barrier.wait(timeout=60)
                self.judge()
                if (r + 1) % 200 == 0:
                    log(f"{self.setup.label}: race {r + 1}/{rounds}: {self.counted.double} "
                        f"double, {self.counted.refused} refused, {len(self.counted.other)} "
                        "other")
            self.stop.set()
            self.barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            if self.errors:
                raise BenchError(f"a racing keeper stopped: {self.errors[0]}") from self.errors[0]
            raise BenchError("a racing keeper stopped") from None
        finally:
            self.stop.set()
            self.barrier.abort()
            for thread in threads:
                thread.join(5)
        return self.counted


def _clean_refusal(answers, item: str) -> bool:
    refused = next(a for a in answers if a.status_code == 409).json()
    return refused.get("error") == "unavailable" and refused.get("items") == [
        {"code": item, "reason": "out"}]


def ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000


def run_backend(label: str, url: str, tmp: Path, args, _sizes=None) -> list[Row]:
    data_dir = tmp / f"var-{label.lower()}"
    web_port, mqtt_port = free_port(), free_port()
    env = hub_env(data_dir, url, web_port, mqtt_port, "3.1.1", [REFERENCE_OBSERVER])
    setup = Setup(label, url, data_dir, env, web_port, mqtt_port)
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        started = time.monotonic()
        hub = prepare(setup, stack, demo=("demo", "--scale", "prefecture"))
        loaded = time.monotonic() - started
        keepers = make_keepers(setup, KEEPERS)
        by_town = serviceable_items(setup)
        items, _ = count_items(setup)
        # Each keeper works the depots of its own townships (round robin), ITEMS_PER_KEEPER
        # items at most; the race takes other items.
        towns = sorted(by_town)
        for k, keeper in enumerate(keepers):
            for town in towns[k::KEEPERS]:
                keeper.items += by_town[town][:-10]
            keeper.items = keeper.items[:ITEMS_PER_KEEPER]
        racing = [code for town in towns for code in by_town[town][-10:]]
        hub.start()
        ready = hub.wait_ready()
        log(f"{label}: hub up (rescuehub run, pid {hub.proc.pid}, web port {web_port}); "
            f"{items:,} items; prepared in {loaded:.0f} s")
        sign_in(setup)
        teams = teams_by_town(setup)
        # Measured on a settled hub: the worker settles its heap once more SETTLE_AGAIN_S after
        # its start (one full collection, about a tenth of a second, once in the process's
        # life), which would otherwise land in the first half minute of the keepers' work.
        settled = ready + SETTLE_AGAIN_S + 3 - time.monotonic()
        if settled > 0:
            log(f"{label}: waiting {settled:.0f} s for the hub to settle its heap")
            time.sleep(settled)

        wall = together(run_keeper, setup, keepers, teams, args.cycles, args.page, args.typed,
                        args.pause)
        done = sum(len(k.times.get("checkout", [])) for k in keepers)
        log(f"{label}: {KEEPERS} keepers, {done} check-outs and check-ins in {wall:.1f} s")
        per_request = {kind: [t for k in keepers for t in k.times.get(kind, [])]
                       for kind, _ in OPERATIONS}
        together(run_healthz, setup, keepers, max(200, args.cycles * 2))
        healthz = [t for k in keepers for t in k.times.get("healthz", [])]
        floor = floor_queries(setup, [c for k in keepers for c in k.items])
        ref_p50, ref_p99 = ms(healthz, 0.5), ms(healthz, 0.99)
        for kind, name in OPERATIONS:
            values = per_request[kind]
            if not values:
                continue
            p50, p99 = ms(values, 0.5), ms(values, 0.99)
            rows.append(Row(label, f"{name} p50", f"{p50:.1f} ms", "", verdict(None),
                            f"{p50 / ref_p50:.1f}x GET /healthz p50 ({ref_p50:.1f} ms); "
                            f"{len(values):,} requests by {KEEPERS} keepers at once"))
            targeted = kind in TARGETED
            rows.append(Row(label, f"{name} p99", f"{p99:.1f} ms",
                            f"< {TARGET_P99_MS:.0f} ms" if targeted else "",
                            verdict(p99 < TARGET_P99_MS) if targeted else verdict(None),
                            f"{p99 / ref_p99:.1f}x GET /healthz p99 ({ref_p99:.1f} ms)"))
        rows.append(Row(label, "reference: GET /healthz, 4 keepers at once",
                        f"p50 {ref_p50:.1f} ms, p99 {ref_p99:.1f} ms", "", verdict(None),
                        f"{len(healthz):,} requests; bare SELECT of an item by code "
                        f"p50 {ms(floor, 0.5):.2f} ms, p99 {ms(floor, 0.99):.2f} ms"))

        pair = (keepers[0], keepers[1])
        race_teams = teams[sorted(teams)[0]]
        counted = Race(setup, pair, race_teams).run(racing, args.rounds)
        _, doubled = count_items(setup)
        rows.append(Row(label, f"double check-outs in {args.rounds:,} races of two keepers",
                        f"{counted.double}", "0",
                        verdict(counted.double == 0 and not counted.other and doubled == 0),
                        f"clean refusals (409 unavailable: out) {counted.refused:,}, other "
                        f"answers {len(counted.other)}; items with 2+ open lines in the "
                        f"database: {doubled}"))
        race_times = pair[0].times.get("race0", []) + pair[1].times.get("race1", [])
        rows.append(Row(label, "racing check-out p50 / p99",
                        f"{ms(race_times, 0.5):.1f} / {ms(race_times, 0.99):.1f} ms", "",
                        verdict(None), f"{len(race_times):,} requests, two at a time"))
        for line in counted.other[:5]:
            log(f"{label}: race answered {line}")
        if counted.double or doubled:
            rows.append(Row(label, "RESULT", "an item was given out twice", "never", "FAIL"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["spatialite", "postgis", "both"], default="both")
    parser.add_argument("--cycles", type=int, default=250,
                        help="check-out/check-in cycles per keeper (default 250)")
    parser.add_argument("--page", type=float, default=0.25,
                        help="the share of scanned items also opened on their page, with their "
                             "history (default 0.25; 0: never)")
    parser.add_argument("--typed", type=float, default=0.25,
                        help="the share of scanned items also searched for with ?q= (default "
                             "0.25; 1: every item; 0: scans only)")
    parser.add_argument("--pause", type=float, default=0.0,
                        help="seconds a keeper takes before each scan, check-out and check-in, "
                             "on average (default 0: flat out, every keeper's next request at "
                             "once; 1: a person at a steady pace)")
    parser.add_argument("--rounds", type=int, default=1000,
                        help="rounds of two keepers racing for one item (default 1000)")
    args = parser.parse_args(argv)
    if (args.cycles < 1 or args.rounds < 1 or not 0 <= args.typed <= 1
            or not 0 <= args.page <= 1 or args.pause < 0):
        parser.error("--cycles and --rounds must be at least 1, --page and --typed 0-1, "
                     "--pause >= 0")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, ingest._interrupt)
    started = time.monotonic()
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="rescuehub-bench-depot-"))
    tmp.chmod(0o755)  # a root hub's broker runs as `mosquitto` and must reach its directory
    code = 0
    try:
        if args.backend in ("spatialite", "both"):
            rows += run_backend("SpatiaLite", "", tmp, args)
        if args.backend in ("postgis", "both"):
            rows += run_postgis(tmp, args, None, runner=run_backend)
    except BenchError as exc:
        log(f"stopped: {exc}")
        code = 1
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_rows("depot.py", f"{KEEPERS} keepers, {args.cycles} cycles each, pausing "
                           f"{args.pause:g} s before each step, searching "
                           f"{args.typed:.0%} of the items, opening the page of "
                           f"{args.page:.0%}; {args.rounds} races; "
                           f"{time.monotonic() - started:.0f} s", rows)
    if any(row.verdict == "FAIL" for row in rows):
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
