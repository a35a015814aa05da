"""Fixtures shared by the positions tests: a small team and its phones."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update

from dispatch.core.db import db
from dispatch.positions import devices
from dispatch.roster.models import Member, MemberSkill, Skill, Team

# In the demo township (铁关镇, about 109.0° E, 33.1° N).
LON, LAT = 109.05, 33.15


@pytest.fixture(autouse=True)
def _positions_sent(request):
    """Markers held for the next `position` event go out before the test ends, not later into
    the next test's sockets (the Socket.IO server is the process's)."""
    app = request.getfixturevalue("app") if "app" in request.fixturenames else None
    yield
    coalescer = app.extensions.get("positions.coalescer") if app is not None else None
    if coalescer is not None:
        coalescer.flush()


@pytest.fixture
def team(app):
    """A team with a squad, two members (W01 with skills, W02 on leave) and a retired one;
    returns their codes."""
    with db.transaction() as s:
        parent = Team(code="TG", name="铁关镇综合应急救援队")
        s.add(parent)
        s.flush()
        squad = Team(code="TG-A", name="一班", parent_id=parent.id)
        boat = Skill(code="boat", name_zh="舟艇操作", name_en="Boat handling",
                     needs_certificate=True)
        s.add_all([squad, boat])
        s.flush()
        wang = Member(code="W01", name="王强", phone="13800000001", status="on_shift",
                      team_id=parent.id, squad_id=squad.id, roles=["rescue"])
        li = Member(code="W02", name="李娜", phone="13800000002", status="leave",
                    team_id=parent.id)
        gone = Member(code="W09", name="赵刚", active=False)
        s.add_all([wang, li, gone])
        s.flush()
        s.add(MemberSkill(member_id=wang.id, skill_id=boat.id, level=2,
                          expires=date(2027, 6, 30)))
    yield ["W01", "W02", "W09"]
    # tests/conftest.py empties table by table: a squad's parent (ON DELETE RESTRICT, one
    # table) would stop `DELETE FROM teams`.
    db.session.rollback()
    with db.transaction() as s:
        s.execute(update(Team).values(parent_id=None))


@dataclass(frozen=True)
class Phone:
    """A registered device and the secrets `device add` printed."""

    code: str
    member: str
    mqtt_password: str | None
    http_secret: str | None
    traccar_id: str | None

    @property
    def basic(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.code}:{self.http_secret}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


@pytest.fixture
def add_phone(app, team):
    """Register a phone for a member (MQTT password hashed as the broker wants it)."""
    from dispatch.core.broker import hash_mqtt_password

    def add(member: str = "W01", kind: str = "owntracks", name: str | None = None) -> Phone:
        with db.transaction() as s:
            added = devices.register_device(s, member, kind=kind, name=name,
                                            settings=app.config["SETTINGS"], actor="test",
                                            mqtt_hash=hash_mqtt_password)
        return Phone(added.code, added.member, added.mqtt_password, added.http_secret,
                     added.traccar_id)

    return add


def ago(**delta) -> datetime:
    """A time this long before now (UTC, whole seconds: OwnTracks' `tst`)."""
    return (datetime.now(UTC) - timedelta(**delta)).replace(microsecond=0)


def location(ts: datetime, lon: float = LON, lat: float = LAT, **fields) -> dict:
    """An OwnTracks location message."""
    return {"_type": "location", "lat": lat, "lon": lon, "tst": int(ts.timestamp()),
            "tid": "wq", **fields}
