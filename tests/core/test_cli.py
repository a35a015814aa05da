"""The CLI contract: commands, exit codes (0 ok, 2 bad usage or settings, 1 failure), one-line
advice instead of tracebacks."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from dispatch.core.db import db
from dispatch.core.i18n import terminal_locale
from dispatch.core.models import Gateway, User
from tests.conftest import CHEAP_PASSWORD_HASH

RESCUEHUB = str(Path(sys.executable).with_name("rescuehub"))


def _start(*args, env_extra=None, tmp_path=None) -> subprocess.Popen:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("RESCUEHUB_")}
    env["RESCUEHUB_LANG"] = "en"  # whatever this machine's LANG; the Chinese is tested below
    env.update(RESCUEHUB_TESTING="1", RESCUEHUB_WEB_PASSWORD_HASH=CHEAP_PASSWORD_HASH)
    if tmp_path is not None:
        env["RESCUEHUB_DATA_DIR"] = str(tmp_path / "var")
    env.update(env_extra or {})
    return subprocess.Popen([RESCUEHUB, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _run(*args, env_extra=None, tmp_path=None) -> subprocess.CompletedProcess:
    return _finish(_start(*args, env_extra=env_extra, tmp_path=tmp_path))


CHINESE_TERMINAL = {"RESCUEHUB_LANG": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "zh_CN.UTF-8"}

# The one-shot commands the tests below check, each a real `rescuehub` process in a data
# directory of its own: (arguments, environment).
ONE_SHOTS = {
    "help": (["--help"], {}),
    "bad settings": (["check-config"], {"RESCUEHUB_WEB_PORT": "eighty"}),
    "secrets": (["check-config"], {"RESCUEHUB_MQTT_PASSWORD": "hunter2hunter2"}),
    "no spatialite": (["init"], {"RESCUEHUB_DATABASE_SPATIALITE_LIBRARY": "mod_nothing"}),
    "no database": (["init"], {"RESCUEHUB_DATABASE_URL":
                               "postgresql+psycopg://nobody@127.0.0.1:1/none"}),
    "zh ok": (["check-config"], CHINESE_TERMINAL),
    "zh bad option": (["simulate", "storm", "--speed", "0.5"], CHINESE_TERMINAL),
    "zh bad setting": (["check-config"], {**CHINESE_TERMINAL, "RESCUEHUB_WEB_PORT": "x"}),
    "en bad option": (["simulate", "storm", "--speed", "0.5"],
                      {**CHINESE_TERMINAL, "RESCUEHUB_LANG": "en"}),
}


@pytest.fixture(scope="module")
def one_shot(tmp_path_factory):
    """The finished process of each of ONE_SHOTS by name. They are all started at the first
    request and run side by side: each spends a second or two importing the hub, mostly
    waiting on the other core, and one after the other they took a tenth of the suite's
    in-process time."""
    started = {name: _start(*args, env_extra=env, tmp_path=tmp_path_factory.mktemp("cli"))
               for name, (args, env) in ONE_SHOTS.items()}
    done = {}

    def result(name: str) -> subprocess.CompletedProcess:
        if name not in done:
            done[name] = _finish(started[name])
        return done[name]

    yield result
    for process in started.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_help_lists_the_contract_commands(one_shot):
    out = one_shot("help").stdout
    for command in ("init", "run", "web", "worker", "user", "gateway", "audit", "check-config"):
        assert f"  {command}" in out


def test_user_add_prints_one_time_password(app, runner):
    result = runner.invoke("user", "add", "zhao", "--role", "keeper")
    assert result.exit_code == 0, result.output
    assert "one-time password:" in result.output
    user = db.session.scalar(select(User).where(User.username == "zhao"))
    assert user.role == "keeper" and user.must_change_password


def test_user_add_bad_usage(app, runner):
    assert runner.invoke("user", "add", "zhao", "--role", "emperor").exit_code == 2
    assert runner.invoke("user", "add", "zhao").exit_code == 2
    runner.invoke("user", "add", "zhao", "--role", "keeper")
    again = runner.invoke("user", "add", "zhao", "--role", "keeper")
    assert again.exit_code == 1 and "zhao" in again.output  # in the hub's language


def test_gateway_add_writes_broker_files(app, runner, data_dir):
    result = runner.invoke("gateway", "add", "GW-07", "--name", "Upper valley",
                           extra_env={"RESCUEHUB_MQTT_MANAGED": "true"})
    assert result.exit_code == 0, result.output
    assert "password" in result.output and "Bearer rhg_" in result.output
    assert "rescuehub/v1/readings/GW-07" in result.output
    passwd = (data_dir / "mosquitto" / "passwd").read_text()
    assert "GW-07:$7$" in passwd
    assert db.session.scalar(select(Gateway.name).where(Gateway.code == "GW-07")) == "Upper valley"


def test_bad_settings_exit_2_with_the_setting_named(one_shot):
    result = one_shot("bad settings")
    assert result.returncode == 2
    assert "web.port" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_config_masks_secrets(one_shot):
    result = one_shot("secrets")
    assert result.returncode == 0 and "hunter2" not in result.stdout
    assert "settings OK" in result.stdout


def test_missing_spatialite_is_one_clear_line(one_shot):
    result = one_shot("no spatialite")
    assert result.returncode == 1
    assert "libsqlite3-mod-spatialite" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_database_is_one_clear_line(one_shot):
    result = one_shot("no database")
    assert result.returncode == 1
    assert "RESCUEHUB_DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


def test_init_creates_first_commander_once(tmp_path):
    first = _run("init", tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "one-time password / 一次性密码:" in first.stdout
    second = _run("init", tmp_path=tmp_path)
    assert second.returncode == 0 and "one-time password" not in second.stdout


def test_reset_password_gives_a_new_one_time_password(app, runner):
    runner.invoke("user", "add", "zhou", "--role", "viewer")
    result = runner.invoke("user", "reset-password", "zhou")
    assert result.exit_code == 0 and "one-time password for zhou:" in result.output
    assert runner.invoke("user", "reset-password", "nobody").exit_code == 1


def test_the_command_speaks_the_terminals_language(one_shot):
    ok = one_shot("zh ok")
    assert ok.returncode == 0 and "设置无误" in ok.stdout
    bad = one_shot("zh bad option")
    assert bad.returncode == 2 and bad.stderr.strip() == "rescuehub: --speed 至少为 1"
    settings = one_shot("zh bad setting")
    assert settings.returncode == 2
    assert settings.stderr.strip() == "rescuehub: 设置项 web.port 必须是整数，收到的是 'x'"
    english = one_shot("en bad option")
    assert english.stderr.strip() == "rescuehub: --speed must be at least 1"


def test_the_hubs_own_errors_reach_the_terminal_translated(app, runner):
    added = runner.invoke("user", "add", "zhao", "--role", "keeper", extra_env=CHINESE_TERMINAL)
    assert "已创建用户 zhao" in added.output
    assert re.search(r"^one-time password: \S+$", added.output, re.MULTILINE)  # read by tools
    again = runner.invoke("user", "add", "zhao", "--role", "keeper",
                          extra_env=CHINESE_TERMINAL)
    assert again.exit_code == 1
    assert again.output.startswith("rescuehub: ") and "zhao" in again.output
    assert not again.output.isascii()  # the hub's lazy message, in Chinese


@pytest.mark.parametrize(("environ", "locale"), [
    ({"RESCUEHUB_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"RESCUEHUB_LANG": "zh_Hans_CN", "LANG": "C.UTF-8"}, "zh_Hans_CN"),
    ({"RESCUEHUB_LANG": "klingon", "LANG": "zh_TW.UTF-8"}, "zh_Hans_CN"),
    ({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LC_ALL": "", "LC_MESSAGES": "zh_CN", "LANG": "C"}, "zh_Hans_CN"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({}, "en"),
])
def test_terminal_locale(environ, locale):
    assert terminal_locale(environ) == locale


@pytest.mark.any_backend  # the demo's load on both backends: tests/maps/test_demo_db.py
def test_simulate_without_a_broker_is_one_clear_line(app, runner):
    assert runner.invoke("demo").exit_code == 0
    result = runner.invoke("simulate", "storm", "--hours", "1")  # the broker port is closed
    assert result.exit_code == 1
    assert result.output.startswith("rescuehub: the broker at 127.0.0.1:1 refused ")
    assert result.output.rstrip().endswith("is the hub running?")
    assert "Traceback" not in result.output and len(result.output.splitlines()) == 1


# --- disabling people and gateways, reserved names (issue #18 §2) -----------------------------

def _audit_actions(entity_id: str) -> list[str]:
    from dispatch.core.models import AuditEntry

    return list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_id == entity_id).order_by(AuditEntry.seq)))


def test_user_disable_and_enable(app, runner):
    runner.invoke("user", "add", "qian", "--role", "dispatcher")
    disabled = runner.invoke("user", "disable", "qian")
    assert disabled.exit_code == 0, disabled.output
    assert "user qian disabled: sessions ended, tokens revoked" in disabled.output
    assert not db.session.scalar(select(User.active).where(User.username == "qian"))
    assert "already disabled" in runner.invoke("user", "disable", "QIAN").output
    enabled = runner.invoke("user", "enable", "qian")
    assert enabled.exit_code == 0 and "user qian enabled" in enabled.output
    db.session.expire_all()
    assert db.session.scalar(select(User.active).where(User.username == "qian"))
    assert _audit_actions("qian")[-2:] == ["user.disable", "user.enable"]
    unknown = runner.invoke("user", "disable", "nobody")
    assert unknown.exit_code == 1 and "nobody" in unknown.output


@pytest.mark.parametrize(("name", "environ"), [
    ("rescuehub", {}),
    ("RescueHub", {}),
    ("rescuehub-worker", {}),
    ("Duty-Hub", {"RESCUEHUB_MQTT_USERNAME": "duty-hub"}),
    ("Grafana", {"RESCUEHUB_MQTT_OBSERVERS": "monitor, grafana"}),
])
def test_gateway_add_refuses_the_hubs_own_names_before_writing(app, runner, data_dir, name,
                                                               environ):
    result = runner.invoke("gateway", "add", name,
                           extra_env={"RESCUEHUB_MQTT_MANAGED": "true", **environ})
    assert result.exit_code == 2, result.output
    assert result.output == (f"rescuehub: {name} is reserved for the hub's own MQTT login: "
                             "choose another gateway id.\n")
    assert db.session.scalar(select(Gateway.id)) is None
    assert not (data_dir / "mosquitto").exists()


def test_gateway_add_refusal_is_translated(app, runner):
    result = runner.invoke("gateway", "add", "rescuehub", extra_env=CHINESE_TERMINAL)
    assert result.exit_code == 2 and result.output.startswith("rescuehub: rescuehub ")
    assert not result.output.isascii()


def test_gateway_disable_revokes_its_token_and_rewrites_the_broker_files(app, runner, client,
                                                                         data_dir):
    managed = {"RESCUEHUB_MQTT_MANAGED": "true"}
    added = runner.invoke("gateway", "add", "GW-07", extra_env=managed)
    token = re.search(r"Bearer (\S+)", added.output).group(1)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    result = runner.invoke("gateway", "disable", "GW-07", extra_env=managed)
    assert result.exit_code == 0, result.output
    assert "gateway GW-07 disabled: HTTP token revoked" in result.output
    assert "the managed broker is not running" in result.output
    assert "GW-07" not in (data_dir / "mosquitto" / "passwd").read_text()
    assert client.get("/api/v1/me",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert _audit_actions("GW-07")[-1] == "gateway.disable"
    again = runner.invoke("gateway", "disable", "GW-07")
    assert again.exit_code == 0 and "already disabled" in again.output
    assert "external: remove the MQTT login GW-07 there" in again.output
    assert runner.invoke("gateway", "disable", "GW-99").exit_code == 1


def test_gateway_disable_takes_the_login_off_a_running_broker(app, runner, tmp_path_factory):
    import time

    from dispatch.core.broker import write_broker_files
    from dispatch.core.runtime import broker_accounts, broker_dir, managed_broker
    from dispatch.core.settings import load_settings
    from tests.fixtures.broker import MqttProbe, free_port, new_broker_dir

    data = new_broker_dir(tmp_path_factory).parent  # a directory the broker user can enter
    url = f"mqtt://127.0.0.1:{free_port()}"
    settings = load_settings({"data": {"dir": str(data)}, "mqtt": {"url": url, "managed": True}})
    env = {"RESCUEHUB_DATA_DIR": str(data), "RESCUEHUB_MQTT_URL": url,
           "RESCUEHUB_MQTT_MANAGED": "true"}
    write_broker_files(broker_dir(settings), broker_accounts(settings))
    broker = managed_broker(settings)
    broker.start()

    def login(password: str) -> MqttProbe:
        probe = MqttProbe("127.0.0.1", broker.port, "GW-09", password, "GW-09")
        probe.reason = probe.connect()
        return probe

    try:
        added = runner.invoke("gateway", "add", "GW-09", extra_env=env)
        assert "broker reloaded" in added.output, added.output
        password = re.search(r"password (\S+)", added.output).group(1)
        deadline = time.monotonic() + 20  # a loaded machine reloads slowly
        while (first := login(password)).reason.is_failure:  # the reload takes a loop turn
            first.close()
            assert time.monotonic() < deadline, (first.reason, broker.log_path.read_text())
            time.sleep(0.05)
        disabled = runner.invoke("gateway", "disable", "GW-09", extra_env=env)
        assert "MQTT login removed; broker reloaded" in disabled.output, disabled.output
        deadline = time.monotonic() + 20  # a loaded machine reloads slowly
        while first.client.is_connected():
            assert time.monotonic() < deadline, "the disabled gateway stayed connected"
            time.sleep(0.05)
        first.close()
        again = login(password)
        again.close()
        assert again.reason.is_failure
    finally:
        broker.stop()


def test_gateway_enable_brings_a_disabled_gateway_back_with_new_credentials(app, runner,
                                                                           client, data_dir):
    managed = {"RESCUEHUB_MQTT_MANAGED": "true"}
    added = runner.invoke("gateway", "add", "GW-08", extra_env=managed)
    old_token = re.search(r"Bearer (\S+)", added.output).group(1)
    assert runner.invoke("gateway", "enable", "GW-08").exit_code == 1  # active: nothing to do
    runner.invoke("gateway", "disable", "GW-08", extra_env=managed)
    result = runner.invoke("gateway", "enable", "gw-08", extra_env=managed)
    assert result.exit_code == 0, result.output
    assert "gateway GW-08 enabled with new credentials" in result.output
    token = re.search(r"Bearer (\S+)", result.output).group(1)
    password = re.search(r"password (\S+)", result.output).group(1)
    me = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=me).status_code == 200
    assert client.get("/api/v1/me",
                      headers={"Authorization": f"Bearer {old_token}"}).status_code == 401
    passwd = (data_dir / "mosquitto" / "passwd").read_text()
    assert "GW-08:" in passwd and password not in passwd  # the hash, never the password
    assert _audit_actions("GW-08")[-1] == "gateway.enable"
