"""The `rescuehub` command (DESIGN §5): exit 0 on success, 2 on bad usage or settings, 1 on any
other failure, always with one line saying what to do."""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from functools import wraps

import click

from dispatch.core.choices import PERSON_ROLES
from dispatch.core.heap import leave
from dispatch.core.i18n import terminal_str
from dispatch.core.i18n import terminal_text as _
from dispatch.core.settings import Settings, SettingsError, load_settings

log = logging.getLogger("rescuehub")


class Failure(click.ClickException):
    """A failure with exit status 1 and one line of advice."""

    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(f"rescuehub: {self.message}", err=True)


class BadSettings(Failure):
    exit_code = 2


class BadUsage(Failure):
    """A refused argument: exit status 2, nothing written."""

    exit_code = 2


def _settings() -> Settings:
    ctx = click.get_current_context()
    if "settings" not in ctx.meta:
        try:
            ctx.meta["settings"] = load_settings()
        except SettingsError as exc:
            raise BadSettings(terminal_str(exc)) from None
    return ctx.meta["settings"]


def guarded(func: Callable) -> Callable:
    """Turn the hub's known errors into one-line messages with the right exit status."""

    @wraps(func)
    def run(*args, **kwargs):
        from dispatch.core.broker import BrokerError
        from dispatch.core.errors import HubError

        try:
            return func(*args, **kwargs)
        except SettingsError as exc:
            raise BadSettings(terminal_str(exc)) from None
        except (HubError, BrokerError) as exc:
            raise Failure(terminal_str(getattr(exc, "message", exc))) from None

    return run


def _app(settings: Settings):
    from dispatch import create_app
    from dispatch.core.db import check_connection, db

    app = create_app(settings=settings)
    with app.app_context():
        check_connection(db.engine)
    return app


def _configure_logging(settings: Settings, to_file: bool) -> None:
    from dispatch.core.runtime import quiet_routine_loggers

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if to_file:
        logs = settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logs / "hub.log", encoding="utf-8"))
    logging.basicConfig(level=settings.log.level.upper(), handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_routine_loggers(settings.log.level)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Township Rescue Hub: floods and landslides, one hub for the township emergency office."""


# --- schema and accounts ----------------------------------------------------------------------

def _upgrade_schema(app) -> None:
    from dispatch.core import schema
    from dispatch.core.db import db

    with app.app_context():
        before = schema.current(db.engine)
        if before != schema.head():
            click.echo(_("schema: %(before)s -> %(after)s …", before=before or _("empty"),
                         after=schema.head()))
            schema.upgrade(db.engine)


def _init(app) -> tuple[str, str] | None:
    from dispatch.core import auth
    from dispatch.core.db import db

    _upgrade_schema(app)
    with app.app_context(), db.transaction() as s:
        return auth.ensure_first_commander(s)


def _print_first_commander(created: tuple[str, str] | None) -> None:
    if created:
        name, password = created
        click.echo("")
        click.secho("  First sign-in / 首次登录", bold=True)
        click.echo(f"    user name / 用户名: {name}")
        click.echo(f"    one-time password / 一次性密码: {password}")
        click.echo("    " + _("(shown once; you will choose your own password after signing in)"))
        click.echo("")


@main.command()
@guarded
def init() -> None:
    """Create or upgrade the database schema (and the first commander)."""
    settings = _settings()
    _configure_logging(settings, to_file=False)
    _print_first_commander(_init(_app(settings)))
    click.echo(_("schema up to date"))


@main.command()
@click.option("--scale", type=click.Choice(["township", "prefecture"]), default="township",
              show_default=True, help="One township, or a prefecture of 103 for benchmarks.")
@click.option("--seed", type=int, default=None, help="Generator seed (default: the fixed one).")
@guarded
def demo(scale: str, seed: int | None) -> None:
    """Load the demo township (idempotent, deterministic), or a whole prefecture."""
    import time

    from dispatch.core.db import db
    from maps import demo as generator
    from maps.service import load_demo_township

    settings = _settings()
    app = _app(settings)
    _upgrade_schema(app)
    started = time.monotonic()
    kwargs = {} if seed is None else {"seed": seed}
    if scale == "township":
        click.echo(_("generating the demo township …"))
        towns = [generator.build_township(**kwargs)]
    else:
        click.echo(_("generating the prefecture (103 townships) …"))

        def progress(done: int, total: int) -> None:
            if done % 10 == 0 or done == total:
                click.echo("  " + _("generated %(done)d/%(total)d", done=done, total=total))

        towns = generator.build_prefecture(progress=progress, **kwargs)
    loaded = 0
    with app.app_context():
        for i, town in enumerate(towns, 1):
            with db.transaction() as s:
                added = load_demo_township(s, town, actor="cli:demo")
            loaded += added
            if len(towns) == 1 or i % 10 == 0 or i == len(towns):
                click.echo(f"  [{i}/{len(towns)}] {town.code} {town.name_zh}: "
                           + (_("loaded") if added else _("already there")))
    if scale == "township":
        _demo_sensors(settings, app, towns[0])
        _demo_thresholds(app, towns[0])
    roster = _demo_roster(settings, app, towns, prefecture=scale == "prefecture", **kwargs)
    _demo_depot(settings, app, towns, roster, prefecture=scale == "prefecture", **kwargs)
    villages = sum(len(t.villages) for t in towns)
    roads = sum(len(t.roads) for t in towns)
    click.echo(_("demo: %(loaded)d township(s) loaded, %(there)d already there; %(villages)d "
                 "villages, %(roads)d road segments in %(seconds).1f s", loaded=loaded,
                 there=len(towns) - loaded, villages=villages, roads=roads,
                 seconds=time.monotonic() - started))


def _demo_sensors(settings: Settings, app, town) -> None:
    """Register the demo gateways and sensors; each gateway's credentials go to data.dir/secrets
    (for `rescuehub simulate`), and a managed broker learns the new logins."""
    import json as json_module

    from dispatch.core import auth
    from dispatch.core.broker import hash_mqtt_password, signal_running_broker, write_broker_files
    from dispatch.core.db import db
    from dispatch.core.keys import write_secret
    from dispatch.core.runtime import broker_accounts, broker_dir
    from telemetry import demo as sensor_demo
    from telemetry.service import load_demo_sensors

    def new_gateway(code: str) -> None:
        _gateway, password, token = auth.create_gateway(
            s, code, actor="cli:demo", name=f"{town.name_zh} {code[-1]}",
            mqtt_hash=hash_mqtt_password)
        write_secret(settings.data_dir, f"gateway-{code}.json",
                     json_module.dumps({"gateway": code, "mqtt_password": password,
                                        "http_token": token}))

    with app.app_context():
        with db.transaction() as s:
            added = load_demo_sensors(s, sensor_demo.build_sensors(town),
                                      sensor_demo.gateway_codes(town), actor="cli:demo",
                                      new_gateway=new_gateway)
        if settings.mqtt.managed:
            write_broker_files(broker_dir(settings), broker_accounts(settings))
            signal_running_broker(broker_dir(settings))
    click.echo("  " + _("sensors: %(added)d registered (gateway credentials in %(path)s)",
                        added=added, path=settings.data_dir / "secrets"))


def _demo_thresholds(app, town) -> None:
    """Threshold tables for the demo's riverside villages and hazard zones (alerts.demo)."""
    from alerts.tables import load_demo_tables
    from dispatch.core.db import db
    from telemetry import demo as sensor_demo

    with app.app_context(), db.transaction() as s:
        added = load_demo_tables(s, town, sensor_demo.build_sensors(town), actor="cli:demo")
    click.echo("  " + _("warning thresholds: %(added)d tables added", added=added))


def _demo_roster(settings: Settings, app, towns, *, prefecture: bool, **seed):
    """The skills catalogue and the rescue teams (dispatch.roster.demo): the demo township's
    full-time team in squads A and B and its composite team, or the prefecture's members."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from dispatch.core.db import db
    from dispatch.roster import demo as roster_demo
    from dispatch.roster.service import load_demo_roster

    # Certificates expire relative to today, in the roster's time zone.
    today = datetime.now(ZoneInfo(settings.roster.timezone)).date()
    roster = (roster_demo.prefecture_roster(towns, today=today, **seed) if prefecture
              else roster_demo.township_roster(towns[0], today=today, **seed))
    with app.app_context(), db.transaction() as s:
        added = load_demo_roster(s, roster, actor="cli:demo")
        if not prefecture:
            _demo_rota(s, settings)
    click.echo("  " + _("rescue teams: %(members)d members in %(teams)d teams and squads "
                        "added (%(total)d in the demo)", members=added["members"],
                        teams=added["teams"], total=len(roster.members)))
    return roster


def _demo_depot(settings: Settings, app, towns, roster, *, prefecture: bool, **seed) -> None:
    """The depots (depot.demo): the demo township's main depot and forward store with ~600
    items and a year of history, or one depot per township of the prefecture (11,292 items);
    their check-outs went to the roster's teams and members."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from depot import demo as depot_demo
    from dispatch.core.db import db

    today = datetime.now(ZoneInfo(settings.roster.timezone)).date()
    places = []
    for town in towns:
        prefix = town.code + "-"
        by_people = sorted(town.villages, key=lambda v: -v.population)
        riverside = [v for v in town.villages if v.riverside and v is not by_people[0]]
        sites = [v.centre for v in [by_people[0], *([] if prefecture else riverside[:1])]]
        places.append(depot_demo.DemoTown(
            town.code, town.name_zh, tuple((p.x, p.y) for p in sites),
            teams=tuple(t.code for t in roster.teams
                        if t.parent is None and t.code.startswith(prefix)),
            members=tuple(m.code for m in roster.members if m.code.startswith(prefix))))
    depots = (depot_demo.prefecture_depots(places, today=today, **seed) if prefecture
              else [depot_demo.township_depot(places[0], today=today, **seed)])
    with app.app_context(), db.transaction() as s:
        added = depot_demo.load_demo_depots(s, depots, actor="cli:demo")
    click.echo("  " + _("depot: %(items)d items in %(sites)d sites added, %(moves)d stock "
                        "moves (%(total)d items in the demo)", items=added["items"],
                        sites=added["sites"], moves=added["moves"],
                        total=sum(len(d.items) for d in depots)))


def _demo_rota(session, settings: Settings) -> None:
    """The demo township's rota, unless one was saved: squads A and B alternating, and the
    cover each shift needs (two boat handlers, two first-aiders, one C1 driver), so that the
    coverage view shows the gap an expiring certificate opens (dispatch.roster.demo)."""
    from dispatch.core.db import utcnow
    from dispatch.roster import rota_service

    if not rota_service.template_value(session, settings)["saved"]:
        rota_service.save_template(session, settings, {"squads": ["A", "B"]},
                                   actor="cli:demo", now=utcnow())
    if not rota_service.rules_value(session):
        rota_service.save_rules(session, [{"skill": "boat", "min": 2},
                                          {"skill": "first_aid", "min": 2},
                                          {"skill": "licence_c1", "min": 1}], actor="cli:demo")


@main.group()
def simulate() -> None:
    """Act as field gateways (for drills and demonstrations)."""


@simulate.command("storm")
@click.option("--speed", type=float, default=60.0, show_default=True,
              help="How many times faster than real time the storm falls (1 = real time). A "
                   "drill: rain intensities are this many times the design storm's.")
@click.option("--hours", type=click.IntRange(1, 24), default=6, show_default=True,
              help="Length of the design storm.")
@guarded
def simulate_storm(speed: float, hours: int) -> None:
    """Publish a drill over MQTT with the demo gateways' logins: a dry, still 24 h spin-up
    stamped in the past, then a design storm and a moving slope stamped in real time (with
    --speed S, the storm's rain is S times as intense as the design's)."""
    import json as json_module

    from geoalchemy2.shape import to_shape
    from sqlalchemy import select

    from dispatch.core.db import db
    from dispatch.core.models import Gateway
    from maps.models import Township
    from telemetry import simulate as sim
    from telemetry.models import Sensor

    if not 1 <= speed < float("inf"):
        raise BadSettings(_("--speed must be at least 1"))
    settings = _settings()
    app = _app(settings)
    with app.app_context():
        rows = db.session.execute(select(Sensor, Gateway.code).join(
            Gateway, Gateway.id == Sensor.gateway_id).where(Sensor.retired.is_(False))).all()
        township = db.session.scalar(select(Township).order_by(Township.code))
        if not rows or township is None:
            raise Failure(_("no sensors registered: run `rescuehub demo` first"))
        centre = to_shape(township.boundary).centroid
        sensors = [sim.SimSensor(s.code, s.kind, gw, *to_shape(s.location).coords[0])
                   for s, gw in rows]
        hazards = sorted({s.hazard_id for s, _ in rows if s.hazard_id})
        slope = {s.code for s, _ in rows if hazards and s.hazard_id == hazards[0]}
    links = {}
    endpoint = settings.mqtt_endpoint
    for gateway in sorted({s.gateway for s in sensors}):
        path = settings.data_dir / "secrets" / f"gateway-{gateway}.json"
        if not path.exists():
            click.echo("  " + _("skipping %(gateway)s: no credentials in %(path)s",
                                gateway=gateway, path=path), err=True)
            continue
        secret = json_module.loads(path.read_text())
        try:
            link = sim.GatewayLink(endpoint.host, endpoint.port, gateway, secret["mqtt_password"])
        except OSError as exc:  # nothing listens there, or the address is wrong
            raise Failure(_("the broker at %(host)s:%(port)s refused %(gateway)s (%(why)s): is "
                            "the hub running?", host=endpoint.host, port=endpoint.port,
                            gateway=gateway, why=exc.strerror or exc)) from None
        if not link.wait():
            raise Failure(_("the broker at %(host)s:%(port)s refused %(gateway)s (%(why)s): is "
                            "the hub running?", host=endpoint.host, port=endpoint.port,
                            gateway=gateway, why=link.refused or _("no answer")))
        links[gateway] = link
    sensors = [s for s in sensors if s.gateway in links]
    plan = sim.StormPlan(centre=(centre.x, centre.y), duration_min=hours * 60, speed=speed)
    click.echo(_("storm over %(sensors)d sensors from %(gateways)d gateways, %(hours)d h at "
                 "%(speed)gx; slope moving at %(slope)d sensors", sensors=len(sensors),
                 gateways=len(links), hours=hours, speed=speed, slope=len(slope)))
    click.echo("  " + _("a drill: the %(hours)d h design storm falls in %(minutes).1f minutes "
                        "of real time, %(speed)gx as intense, stamped with the time each "
                        "report is sent", hours=hours, minutes=plan.real_s / 60, speed=speed))

    def spun_up(readings: int) -> None:
        click.echo("  " + _("spin-up: %(readings)d readings for the dry, still 24 h before the "
                            "storm, stamped in the past", readings=readings))

    def progress(step: int, steps: int, total: float) -> None:
        if step % 6 == 0 or step == steps:
            click.echo(f"  [{step}/{steps}] "
                       + _("rain at the storm centre so far: %(mm).1f mm", mm=total))

    try:
        sent = sim.run_storm(links, sensors, plan, slope, progress=progress, spun_up=spun_up)
    finally:
        for link in links.values():
            link.close()
    click.echo(_("done: %(sent)d readings published", sent=sent))


@main.group()
def user() -> None:
    """Manage people who sign in."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True,
              type=click.Choice([str(role) for role in PERSON_ROLES]))
@click.option("--display-name", default="", help="Name shown on pages.")
@guarded
def user_add(name: str, role: str, display_name: str) -> None:
    """Add a person; prints a one-time password."""
    from dispatch.core import auth
    from dispatch.core.db import db

    app = _app(_settings())
    with app.app_context(), db.transaction() as s:
        _user, password = auth.create_user(s, name, role, actor="cli", display_name=display_name)
    click.echo(_("user %(name)s (%(role)s) created", name=name, role=role))
    # A line other tools read (DESIGN §5): the same in every language, like `gateway add`'s.
    click.echo(f"one-time password: {password}")


@user.command("reset-password")
@click.argument("name")
@guarded
def user_reset_password(name: str) -> None:
    """Give a person a new one-time password (e.g. a lost first sign-in)."""
    from dispatch.core import auth
    from dispatch.core.db import db

    app = _app(_settings())
    with app.app_context(), db.transaction() as s:
        password = auth.reset_password(s, name, actor="cli")
    click.echo(f"one-time password for {name}: {password}")  # read by tools, as above
    click.echo(_("%(name)s's sessions ended and tokens revoked", name=name))


def _set_user_active(name: str, active: bool) -> bool:
    from dispatch.core import auth
    from dispatch.core.db import db

    app = _app(_settings())
    with app.app_context(), db.transaction() as s:
        return auth.set_user_active(s, name, active, actor="cli")


@user.command("disable")
@click.argument("name")
@guarded
def user_disable(name: str) -> None:
    """Stop a person signing in; their sessions and tokens end at once."""
    if _set_user_active(name, False):
        click.echo(_("user %(name)s disabled: sessions ended, tokens revoked", name=name))
    else:
        click.echo(_("user %(name)s was already disabled", name=name))


@user.command("enable")
@click.argument("name")
@guarded
def user_enable(name: str) -> None:
    """Let a disabled person sign in again (with their password; nothing old comes back)."""
    if _set_user_active(name, True):
        click.echo(_("user %(name)s enabled", name=name))
    else:
        click.echo(_("user %(name)s was not disabled", name=name))


@main.group()
def gateway() -> None:
    """Manage sensor gateways."""


@gateway.command("add")
@click.argument("gateway_id")
@click.option("--name", default="", help="A readable name, e.g. the site.")
@guarded
def gateway_add(gateway_id: str, name: str) -> None:
    """Register a gateway; prints its MQTT password and HTTP token once."""
    from dispatch.core import auth
    from dispatch.core.broker import hash_mqtt_password, signal_running_broker, write_broker_files
    from dispatch.core.db import db
    from dispatch.core.errors import HubError
    from dispatch.core.runtime import broker_accounts, broker_dir

    settings = _settings()
    try:  # before anything is written: the hub's own MQTT names would stop it starting
        auth.check_gateway_code(gateway_id, settings)
    except HubError as exc:
        raise BadUsage(terminal_str(exc.message)) from None
    app = _app(settings)
    with app.app_context():
        with db.transaction() as s:
            _gateway, password, token = auth.create_gateway(
                s, gateway_id, actor="cli", name=name, mqtt_hash=hash_mqtt_password)
        reloaded = False
        if settings.mqtt.managed:
            write_broker_files(broker_dir(settings), broker_accounts(settings))
            reloaded = signal_running_broker(broker_dir(settings))
    click.echo(_("gateway %(gateway)s registered", gateway=gateway_id))
    _print_gateway_credentials(settings, gateway_id, password, token, reloaded)


def _print_gateway_credentials(settings: Settings, gateway_id: str, password: str, token: str,
                               reloaded: bool) -> None:
    endpoint = settings.mqtt_endpoint
    click.echo(f"  MQTT     {endpoint.host}:{endpoint.port}  user {gateway_id}")
    click.echo(f"  password {password}")
    click.echo(f"  topics   rescuehub/v1/readings/{gateway_id}, rescuehub/v1/status/{gateway_id}")
    click.echo(f"  HTTP     Authorization: Bearer {token}")
    click.echo("  " + _("(shown once: store them in the gateway now)"))
    if settings.mqtt.managed:
        click.echo("  " + (_("broker reloaded") if reloaded else
                           _("the managed broker is not running; it will know the gateway when "
                             "it starts")))


@gateway.command("enable")
@click.argument("gateway_id")
@guarded
def gateway_enable(gateway_id: str) -> None:
    """Bring a disabled gateway back; prints its new MQTT password and HTTP token once."""
    from dispatch.core import auth
    from dispatch.core.broker import hash_mqtt_password, signal_running_broker, write_broker_files
    from dispatch.core.db import db
    from dispatch.core.runtime import broker_accounts, broker_dir

    settings = _settings()
    app = _app(settings)
    with app.app_context():
        with db.transaction() as s:
            gateway, password, token = auth.enable_gateway(s, gateway_id, actor="cli",
                                                           mqtt_hash=hash_mqtt_password)
            code = gateway.code
        reloaded = False
        if settings.mqtt.managed:
            write_broker_files(broker_dir(settings), broker_accounts(settings))
            reloaded = signal_running_broker(broker_dir(settings))
    click.echo(_("gateway %(gateway)s enabled with new credentials", gateway=code))
    _print_gateway_credentials(settings, code, password, token, reloaded)


@gateway.command("disable")
@click.argument("gateway_id")
@guarded
def gateway_disable(gateway_id: str) -> None:
    """Retire a gateway: revoke its HTTP token and remove its MQTT login."""
    from dispatch.core import auth
    from dispatch.core.broker import signal_running_broker, write_broker_files
    from dispatch.core.db import db
    from dispatch.core.runtime import broker_accounts, broker_dir

    settings = _settings()
    app = _app(settings)
    with app.app_context():
        with db.transaction() as s:
            changed = auth.disable_gateway(s, gateway_id, actor="cli")
        reloaded = False
        if settings.mqtt.managed:
            # The broker files list active gateways only: rewriting them drops this login.
            write_broker_files(broker_dir(settings), broker_accounts(settings))
            reloaded = signal_running_broker(broker_dir(settings))
    click.echo(_("gateway %(gateway)s disabled: HTTP token revoked", gateway=gateway_id)
               if changed else _("gateway %(gateway)s was already disabled", gateway=gateway_id))
    if not settings.mqtt.managed:
        click.echo("  " + _("the broker is external: remove the MQTT login %(gateway)s there",
                            gateway=gateway_id))
    elif reloaded:
        click.echo("  " + _("MQTT login removed; broker reloaded"))
    else:
        click.echo("  " + _("MQTT login removed; the managed broker is not running"))


@main.group()
def terminal() -> None:
    """Manage village broadcast terminals (loudspeakers that read a village's warning)."""


def _rewrite_broker_files(settings: Settings) -> bool:
    """Write the managed broker's files again and make it reload; whether it did."""
    from dispatch.core.broker import signal_running_broker, write_broker_files
    from dispatch.core.runtime import broker_accounts, broker_dir

    write_broker_files(broker_dir(settings), broker_accounts(settings))
    return signal_running_broker(broker_dir(settings))


@terminal.command("add")
@click.argument("village")
@click.option("--name", default="", help="A readable name, e.g. where it hangs.")
@guarded
def terminal_add(village: str, name: str) -> None:
    """Register a terminal for VILLAGE; prints its MQTT login once (it may only read that
    village's warning topic)."""
    from alerts import channels
    from dispatch.core.broker import hash_mqtt_password
    from dispatch.core.db import db
    from dispatch.core.errors import NotFound

    settings = _settings()
    app = _app(settings)
    with app.app_context():
        try:
            with db.transaction() as s:
                created, password = channels.register_terminal(
                    s, village, actor="cli", name=name, mqtt_hash=hash_mqtt_password)
                code, village = created.code, created.village_code
        except NotFound as exc:
            raise BadUsage(terminal_str(exc.message)) from None
        reloaded = _rewrite_broker_files(settings) if settings.mqtt.managed else False
    endpoint = settings.mqtt_endpoint
    click.echo(_("terminal %(terminal)s registered for village %(village)s", terminal=code,
                 village=village))
    # Lines other tools read, the same in every language (like `gateway add`'s).
    click.echo(f"  MQTT     {endpoint.host}:{endpoint.port}  user {code}")
    click.echo(f"  password {password}")
    click.echo(f"  topic    {channels.village_topic(village)}  (read only, retained, QoS 1)")
    click.echo("  " + _("(shown once: store it in the terminal now)"))
    if not settings.mqtt.managed:
        click.echo("  " + _("the broker is external: add this login there, with the terminal's "
                            "ACL block from config/mosquitto.acl"))
    else:
        click.echo("  " + (_("broker reloaded") if reloaded else
                           _("the managed broker is not running; it will know the terminal "
                             "when it starts")))


@terminal.command("list")
@guarded
def terminal_list() -> None:
    """List the terminals: login, village, whether active, when registered."""
    from alerts import channels
    from dispatch.core.db import db

    app = _app(_settings())
    with app.app_context():
        rows = [(t.code, t.village_code, t.active, t.created_at)
                for t in channels.terminals(db.session)]
    if not rows:
        click.echo(_("no terminals yet: add one with rescuehub terminal add VILLAGE"))
    for code, village, active, created in rows:
        state = _("active") if active else _("disabled")
        click.echo(f"{code}\t{village}\t{state}\t{created.isoformat(timespec='seconds')}")


@terminal.command("disable")
@click.argument("code")
@guarded
def terminal_disable(code: str) -> None:
    """Retire a terminal: remove its MQTT login."""
    from alerts import channels

    _retire_login(lambda s: channels.disable_terminal(s, code, actor="cli"), messages=(
        _("terminal %(terminal)s disabled", terminal=code),
        _("terminal %(terminal)s was already disabled", terminal=code),
        _("the broker is external: remove the MQTT login %(terminal)s there", terminal=code)))


def _retire_login(disable: Callable, *, messages: tuple[str, str, str]) -> None:
    """Disable a terminal or device (`disable(session)` says whether it changed anything),
    take its login out of the managed broker's files, and say so: `messages` are what to say
    when it was disabled, when it was already, and when the broker is external."""
    from dispatch.core.db import db
    from dispatch.core.errors import NotFound

    settings = _settings()
    app = _app(settings)
    with app.app_context():
        try:
            with db.transaction() as s:
                changed = disable(s)
        except NotFound as exc:
            raise BadUsage(terminal_str(exc.message)) from None
        reloaded = _rewrite_broker_files(settings) if settings.mqtt.managed else False
    disabled, already, external = messages
    click.echo(disabled if changed else already)
    if not settings.mqtt.managed:
        click.echo("  " + external)
    elif reloaded:
        click.echo("  " + _("MQTT login removed; broker reloaded"))
    else:
        click.echo("  " + _("MQTT login removed; the managed broker is not running"))


@main.group()
def device() -> None:
    """Manage the phones that report team members' positions (OwnTracks, Traccar Client)."""


@device.command("add")
@click.argument("member")
@click.option("--kind", type=click.Choice(["owntracks", "traccar"]), default="owntracks",
              show_default=True, help="The app on the phone.")
@click.option("--name", default=None,
              help="The device's login (default: MEMBER-1, MEMBER-2, …).")
@guarded
def device_add(member: str, kind: str, name: str | None) -> None:
    """Register a phone for MEMBER; prints once what to enter in the app: the MQTT login and
    the HTTP address and credentials (OwnTracks), or the device identifier (Traccar Client)."""
    from alerts.capmessages import public_url
    from dispatch.core.broker import hash_mqtt_password
    from dispatch.core.db import db
    from dispatch.core.errors import BadRequest, Conflict, NotFound
    from dispatch.positions import devices

    settings = _settings()
    app = _app(settings)
    with app.app_context():
        try:
            with db.transaction() as s:
                added = devices.register_device(s, member, kind=kind, name=name,
                                                settings=settings, actor="cli",
                                                mqtt_hash=hash_mqtt_password)
        except (BadRequest, Conflict, NotFound) as exc:
            raise BadUsage(terminal_str(exc.message)) from None
        reloaded = (_rewrite_broker_files(settings)
                    if settings.mqtt.managed and kind == "owntracks" else False)
        base = public_url()
    click.echo(_("device %(device)s registered for member %(member)s", device=added.code,
                 member=added.member))
    # Lines other tools read, the same in every language (like `gateway add`'s).
    if kind == "owntracks":
        endpoint = settings.mqtt_endpoint
        click.echo(f"  MQTT     {endpoint.host}:{endpoint.port}  user {added.code}")
        click.echo(f"  password {added.mqtt_password}")
        click.echo(f"  topic    owntracks/{added.code}/<device>  (its own tree only)")
        click.echo(f"  HTTP     {base}/api/v1/owntracks")
        click.echo(f"  user     {added.code}")
        click.echo(f"  secret   {added.http_secret}")
    else:
        click.echo(f"  URL      {base}/api/v1/osmand")
        click.echo(f"  id       {added.traccar_id}")
    click.echo("  " + _("(shown once: enter it in the phone's app now)"))
    if kind == "owntracks" and not settings.mqtt.managed:
        click.echo("  " + _("the broker is external: add this login there, with the phone's "
                            "ACL block from config/mosquitto.acl"))
    elif kind == "owntracks":
        click.echo("  " + (_("broker reloaded") if reloaded else
                           _("the managed broker is not running; it will know the device "
                             "when it starts")))


@device.command("list")
@guarded
def device_list() -> None:
    """List the devices: login, member, app, whether active, when last heard from."""
    from dispatch.core.db import db
    from dispatch.positions import devices

    app = _app(_settings())
    with app.app_context():
        rows = devices.devices(db.session)
    if not rows:
        click.echo(_("no devices yet: add one with rescuehub device add MEMBER"))
    for code, member, kind, active, _created, seen in rows:
        state = _("active") if active else _("disabled")
        last = seen.isoformat(timespec="seconds") if seen else "-"
        click.echo(f"{code}\t{member}\t{kind}\t{state}\t{last}")


@device.command("disable")
@click.argument("code")
@guarded
def device_disable(code: str) -> None:
    """Retire a device: its MQTT login, HTTP secret and identifier stop working."""
    from dispatch.positions import devices

    _retire_login(lambda s: devices.disable_device(s, code, actor="cli"), messages=(
        _("device %(device)s disabled", device=code),
        _("device %(device)s was already disabled", device=code),
        _("the broker is external: remove the MQTT login %(device)s there", device=code)))


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@click.option("--checkpoint", is_flag=True,
              help="When the chain is intact, append its head to the checkpoint file (and send "
                   "it to audit.anchor_url).")
@guarded
def audit_verify(checkpoint: bool) -> None:
    """Check the audit chain and its checkpoints; names every changed, deleted or reordered
    entry."""
    from dispatch.core import audit as trail
    from dispatch.core.db import db

    settings = _settings()
    app = _app(settings)
    path = trail.checkpoint_file(settings.data_dir)
    checkpoints, unreadable = trail.read_checkpoints(path)
    with app.app_context():
        def progress(n: int) -> None:
            if n % 10000 == 0:
                click.echo("  " + _("%(count)d entries checked …", count=n), err=True)

        verdict = trail.verify(db.session, progress=progress, checkpoints=checkpoints)
        breaks = unreadable + verdict.breaks
        if not breaks and checkpoint:
            taken = _take_checkpoint(trail, settings)
    if not breaks:
        if checkpoints:
            click.echo(_("audit chain intact: %(count)d entries, %(checkpoints)d checkpoint(s) "
                         "match", count=verdict.entries, checkpoints=len(checkpoints)))
        else:
            click.echo(_("audit chain intact: %(count)d entries", count=verdict.entries))
            click.echo(_("no checkpoints in %(path)s yet: a rewrite of the whole chain would "
                         "go unnoticed (the running hub writes one every %(minutes)d minutes)",
                         path=str(path), minutes=trail.CHECKPOINT_EVERY.seconds // 60),
                       err=True)
        if checkpoint:
            click.echo(taken)
        return
    for brk in breaks:
        click.echo(_("entry %(seq)s: %(problem)s", seq=brk.seq, problem=brk.problem))
    if any(brk.checkpoint for brk in breaks):
        raise Failure(_("audit chain disagrees with its checkpoints in %(path)s (%(places)d "
                        "place(s), %(count)d entries checked): the database was rewritten; "
                        "restore it from a backup older than the first place named and "
                        "investigate who had write access", path=str(path), places=len(breaks),
                        count=verdict.entries))
    raise Failure(_("audit chain broken at %(places)d place(s) after checking %(count)d "
                    "entries: restore the database from a backup and investigate who changed it",
                    places=len(breaks), count=verdict.entries))


def _take_checkpoint(trail, settings: Settings) -> str:
    """Append the head to the checkpoint file (and send it to the anchor); the line to print."""
    from dispatch.core.db import db, utcnow

    with db.transaction() as s:
        taken, written = trail.take_checkpoint(s, settings.data_dir, utcnow())
    if taken is None:
        return _("the audit log is empty: no checkpoint taken")
    if settings.audit.anchor_url and not trail.send_to_anchor(settings.audit.anchor_url, taken):
        click.echo(_("the checkpoint could not be sent to %(url)s (see the log); the hub sends "
                     "it again later", url=settings.audit.anchor_url), err=True)
    if written:
        return _("checkpoint written: entry %(seq)d", seq=taken.seq)
    return _("checkpoint already at entry %(seq)d", seq=taken.seq)


@main.command("check-config")
@click.option("--json", "as_json", is_flag=True, help="Print the effective settings as JSON.")
@guarded
def check_config(as_json: bool) -> None:
    """Validate the settings and print them (secrets masked)."""
    settings = _settings()
    values = settings.as_dict()
    for section, key in (("web", "secret_key"), ("mqtt", "password"), ("database", "url")):
        if values[section][key] and key != "url":
            values[section][key] = "***"
    if "@" in values["database"]["url"]:
        values["database"]["url"] = "***masked***"
    if as_json:
        click.echo(json.dumps(values, indent=2))
        return
    for section, items in values.items():
        for key, value in items.items():
            click.echo(f"{section}.{key} = {value!r}")
    click.echo(_("settings OK"))


# --- evacuation -------------------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the whole plan as JSON.")
@click.option("--levels", "levels_file", type=click.File("r", encoding="utf-8"), default=None,
              help='A drill: a JSON file of village levels, {"V012": "evacuate"}.')
@click.option("--mode", type=click.Choice(["split", "together"]), default=None,
              help="split (exact, default) or together (each village to one shelter).")
@guarded
def plan(as_json: bool, levels_file, mode: str | None) -> None:
    """Compute and store a new evacuation plan version; print its summary (or --json)."""
    from sqlalchemy import select

    from dispatch.core.db import db
    from dispatch.evacuation import planner, rules
    from maps.models import Village

    settings = _settings()
    _configure_logging(settings, to_file=False)
    app = _app(settings)
    with app.app_context():
        levels = None
        if levels_file is not None:
            try:
                levels = rules.levels_from(json.load(levels_file),
                                           db.session.scalars(select(Village.code)).all())
            except (ValueError, json.JSONDecodeError) as exc:
                raise BadUsage(_("--levels: %(problem)s", problem=str(exc))) from None
            db.session.rollback()
        stored = planner.make_plan(app, trigger="manual", ref="cli", actor="cli",
                                   drill_levels=levels, mode=mode)
    body = stored.body
    if as_json:
        click.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    _print_plan(body)


def _print_plan(body: dict) -> None:
    metrics = body["metrics"]
    label = _("drill plan") if body["drill"] else _("plan")
    click.echo(_("%(label)s version %(version)s (%(mode)s): %(placed)s of %(to_move)s people "
                 "placed, %(no_route)s without a route, %(no_capacity)s without a place",
                 label=label, version=body["version"], mode=body["mode"],
                 placed=metrics["placed"], to_move=metrics["to_move"],
                 no_route=metrics["unplaced"]["no_route"],
                 no_capacity=metrics["unplaced"]["no_capacity"]))
    click.echo(_("longest trip %(minutes)s min; %(person_h)s person-hours in all; computed in "
                 "%(ms)s ms", minutes=round(metrics["max_travel_s"] / 60),
                 person_h=round(body["objective_person_s"] / 3600), ms=metrics["total_ms"]))
    for a in body["assignments"][:40]:
        click.echo(f"  {a['village']} → {a['shelter']}: {a['people']} "
                   f"({round(a['travel_s'] / 60)} min, {len(a['roads'])} "
                   + _("road segments") + ")")
    if len(body["assignments"]) > 40:
        click.echo("  " + _("… and %(n)s more (see --json)", n=len(body["assignments"]) - 40))
    for v in body["villages"]:
        if v["unplaced"]:
            click.echo("  " + _("%(village)s: %(people)s not placed (%(reason)s)",
                                village=v["code"], people=v["unplaced"], reason=v["reason"]))


# --- serving ----------------------------------------------------------------------------------

def _start_broker(settings: Settings, app):
    from dispatch.core.broker import write_broker_files
    from dispatch.core.runtime import broker_accounts, broker_dir, managed_broker

    with app.app_context():
        write_broker_files(broker_dir(settings), broker_accounts(settings))
    broker = managed_broker(settings)
    broker.start()
    broker.supervise()
    return broker


def _check_web_port(host: str, port: int) -> None:
    if not _port_free(host, port):
        raise Failure(_("web port %(host)s:%(port)s is in use: stop what uses it, or pass "
                        "--port (setting web.port, RESCUEHUB_WEB_PORT)", host=host, port=port))


def _serve(settings: Settings, host: str, port: int, with_background: bool) -> int | str | None:
    """Serve until gunicorn's arbiter stops; return the status it leaves with (its `sys.exit`),
    for the caller to stop what it started and then `leave` with it."""
    from dispatch import create_app
    from dispatch.core.runtime import Background
    from dispatch.core.server import HubServer
    from dispatch.jobs import SCHEDULE, SUBSCRIBERS

    def start(app):
        if with_background:
            Background(app, SCHEDULE, SUBSCRIBERS).start()

    def stop(app):
        background = app.extensions.get("rescuehub.background")
        if background is not None:
            background.stop()

    try:
        HubServer(lambda: create_app(settings=settings), host=host, port=port,
                  threads=settings.web.threads, on_worker_start=start, on_worker_stop=stop).run()
    except SystemExit as stopped:
        return stopped.code
    return 0


def _banner(settings: Settings, host: str, port: int) -> None:
    endpoint = settings.mqtt_endpoint
    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
    click.echo(_("Township Rescue Hub on %(url)s  (data: %(path)s)",
                 url=f"http://{shown}:{port}/", path=settings.data_dir))
    kind = _("managed mosquitto") if settings.mqtt.managed else _("external broker")
    click.echo(_("MQTT: %(kind)s at %(host)s:%(port)s", kind=kind, host=endpoint.host,
                 port=endpoint.port))


def _host_port(settings: Settings, host: str | None, port: int | None) -> tuple[str, int]:
    host = host or settings.web.host
    port = port if port is not None else settings.web.port
    if not 1 <= port <= 65535:
        raise BadSettings(_("--port must be 1-65535, got %(port)s", port=port))
    return host, port


@main.command()
@click.option("--host", default=None, help="Address to listen on (web.host).")
@click.option("--port", type=int, default=None, help="Port to listen on (web.port).")
@guarded
def run(host: str | None, port: int | None) -> None:
    """Run everything in one process: web, Socket.IO, MQTT ingest, scheduler, managed broker."""
    settings = _settings()
    host, port = _host_port(settings, host, port)
    _configure_logging(settings, to_file=True)
    _check_web_port(host, port)
    app = _app(settings)
    # Printed at once: a later failure (a taken broker port) must not lose the password.
    _print_first_commander(_init(app))
    broker = _start_broker(settings, app) if settings.mqtt.managed else None
    _banner(settings, host, port)
    try:
        status = _serve(settings, host, port, with_background=True)
    finally:
        if broker is not None:
            broker.stop()
    leave(status)  # all is stopped and flushed: no interpreter teardown (0.4 s)


@main.command()
@click.option("--host", default=None, help="Address to listen on (web.host).")
@click.option("--port", type=int, default=None, help="Port to listen on (web.port).")
@guarded
def web(host: str | None, port: int | None) -> None:
    """Serve web and Socket.IO only (scale-out: several of these, one `worker`)."""
    from dispatch.core import schema
    from dispatch.core.db import db

    settings = _settings()
    host, port = _host_port(settings, host, port)
    _configure_logging(settings, to_file=True)
    app = _app(settings)
    with app.app_context():
        if schema.current(db.engine) != schema.head():
            raise Failure(_("the database schema is not up to date: run `rescuehub init` "
                            "first"))
    _check_web_port(host, port)
    _banner(settings, host, port)
    leave(_serve(settings, host, port, with_background=False))


@main.command()
@guarded
def worker() -> None:
    """Own the MQTT subscription and the scheduler (exactly one per deployment)."""
    from prometheus_client import start_http_server

    from dispatch.core import metrics
    from dispatch.core.runtime import Background
    from dispatch.jobs import SCHEDULE, SUBSCRIBERS

    settings = _settings()
    _configure_logging(settings, to_file=True)
    app = _app(settings)
    created = _init(app)
    _print_first_commander(created)
    broker = _start_broker(settings, app) if settings.mqtt.managed else None
    if settings.worker.metrics_port:
        start_http_server(settings.worker.metrics_port, addr="127.0.0.1",
                          registry=metrics.registry)
    background = Background(app, SCHEDULE, SUBSCRIBERS)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    background.start()
    click.echo(_("worker running; Ctrl-C stops it"))
    try:
        stopping.wait()
    finally:
        background.stop()
        if broker is not None:
            broker.stop()
