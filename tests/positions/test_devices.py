"""`rescuehub device add|list|disable`, and the phones' MQTT logins in the broker's files."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dispatch.core import auth
from dispatch.core.broker import ACL_PATTERNS, BrokerAccount, hash_mqtt_password, render_acl
from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from dispatch.core.runtime import broker_accounts
from dispatch.core.settings import ROOT
from dispatch.positions import devices
from dispatch.positions.devices import secret_digest
from dispatch.positions.models import Device
from tests.core.test_broker import acl_rules, commented_block

# The registry and the CLI: plain ORM statements, the same on both backends (conftest).
pytestmark = pytest.mark.any_backend


def test_device_add_prints_the_owntracks_login_once(app, runner, team, data_dir):
    result = runner.invoke("device", "add", "W01", extra_env={"RESCUEHUB_MQTT_MANAGED": "true"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "device W01-1 registered for member W01" in out
    password = re.search(r"^  password (\S+)$", out, re.M).group(1)
    secret = re.search(r"^  secret   (\S+)$", out, re.M).group(1)
    assert re.search(r"^  MQTT     127\.0\.0\.1:1  user W01-1$", out, re.M)
    assert "owntracks/W01-1/<device>" in out
    assert re.search(r"^  HTTP     http://127\.0\.0\.1:5000/api/v1/owntracks$", out, re.M)
    device = db.session.scalar(select(Device))
    assert (device.code, device.kind, device.traccar_id_sha256) == ("W01-1", "owntracks", None)
    assert device.http_secret_sha256 == secret_digest(secret) and password not in str(
        device.mqtt_password_hash)
    assert f"W01-1:{device.mqtt_password_hash}" in (data_dir / "mosquitto" / "passwd").read_text()
    acl = (data_dir / "mosquitto" / "acl").read_text()
    assert "user W01-1\ntopic deny rescuehub/v1/readings/W01-1\n" in acl
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.entity_id == "W01-1"))
    assert entry.action == "device.create" and password not in str(entry.after)
    again = runner.invoke("device", "add", "w01")
    assert again.exit_code == 0 and "device W01-2 registered" in again.output


def test_device_add_for_traccar_prints_a_long_identifier(app, runner, team):
    result = runner.invoke("device", "add", "W02", "--kind", "traccar", "--name", "li-phone")
    assert result.exit_code == 0, result.output
    identifier = re.search(r"^  id       ([0-9a-f]{32})$", result.output, re.M).group(1)
    assert re.search(r"^  URL      http://127\.0\.0\.1:5000/api/v1/osmand$", result.output,
                     re.M)
    assert "password" not in result.output and "MQTT" not in result.output
    device = db.session.scalar(select(Device))
    assert (device.code, device.kind) == ("li-phone", "traccar")
    assert device.traccar_id_sha256 == secret_digest(identifier)


@pytest.mark.parametrize(("args", "says"), [
    (("NOBODY",), "No team member NOBODY"),
    (("W09",), "No team member W09"),                       # retired
    (("W01", "--name", "rescuehub"), "reserved"),
    (("W01", "--name", "RescueHub-phone"), "reserved"),
    (("W01", "--name", "T-V01-1"), "reserved"),             # a terminal's form
    (("W01", "--name", "GW-01"), "taken"),                  # a gateway's login, any case
    (("W01", "--name", "gw-01"), "taken"),
    (("W01", "--name", "a/b"), "cannot be an MQTT username"),
    (("W01", "--name", "owntracks/#"), "cannot be an MQTT username"),
    (("W01", "--kind", "phone"), "Invalid value"),
])
def test_device_add_refuses_bad_names_and_members(app, runner, team, args, says):
    with db.transaction() as s:
        auth.create_gateway(s, "GW-01", actor="test", mqtt_hash=str)
    result = runner.invoke("device", "add", *args)
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output
    assert db.session.scalar(select(Device.id)) is None


def test_a_taken_device_name_is_refused(app, runner, team):
    assert runner.invoke("device", "add", "W01", "--name", "wang").exit_code == 0
    result = runner.invoke("device", "add", "W02", "--name", "WANG")
    assert result.exit_code == 2 and "taken" in result.output


def test_device_list_and_disable(app, runner, team):
    assert "no devices yet" in runner.invoke("device", "list").output
    runner.invoke("device", "add", "W01")
    runner.invoke("device", "add", "W02", "--kind", "traccar")
    listed = runner.invoke("device", "list").output.splitlines()
    assert [line.split("\t")[:4] for line in listed] == [
        ["W01-1", "W01", "owntracks", "active"], ["W02-1", "W02", "traccar", "active"]]
    disabled = runner.invoke("device", "disable", "w01-1")
    assert disabled.exit_code == 0 and "device w01-1 disabled" in disabled.output
    assert "already disabled" in runner.invoke("device", "disable", "W01-1").output
    assert runner.invoke("device", "disable", "NOPE").exit_code == 2
    assert runner.invoke("device", "list").output.splitlines()[0].split("\t")[3] == "disabled"


def test_the_broker_files_list_active_owntracks_phones_only(app, add_phone):
    settings = app.config["SETTINGS"]
    wang, li = add_phone("W01"), add_phone("W02")
    add_phone("W01", kind="traccar")
    with db.transaction() as s:
        devices.disable_device(s, li.code, actor="test")
    accounts = {a.username: a for a in broker_accounts(settings)}
    assert accounts[wang.code].role == "device"
    assert li.code not in accounts and "W01-2" not in accounts


def test_a_gateway_added_later_under_a_phones_login_keeps_the_gateway(app, add_phone, caplog):
    phone = add_phone()
    with db.transaction() as s:
        auth.create_gateway(s, phone.code, actor="test", mqtt_hash=hash_mqtt_password)
    accounts = [a for a in broker_accounts(app.config["SETTINGS"]) if a.username == phone.code]
    assert [a.role for a in accounts] == ["gateway"]
    assert "left out of the broker files" in caplog.text


def test_acl_template_documents_the_phones_block():
    template = (ROOT / "config" / "mosquitto.acl").read_text()
    rendered = acl_rules(render_acl([BrokerAccount("DEVICE", hash_mqtt_password("pw"),
                                                   "device")]))
    assert rendered[:-len(ACL_PATTERNS)] == commented_block(template, "user DEVICE")
