"""The hub's managed Mosquitto broker: password and ACL files, and a supervised child process.

Plain Python, the standard library and paho (no Flask, no database): the CLI's `gateway add` uses
the file writers and `signal_running_broker` from a separate process, the hub's `run` and `worker`
commands own a `ManagedBroker`. Linux only in the details that matter (/proc, prctl).

Facts this module relies on (NOTES.md, Mosquitto 2.0.11, checked here again):
- Mosquitto started as root drops to user `mosquitto` itself, and that credential change clears
  PR_SET_PDEATHSIG: such a child outlived a `kill -9` of the hub. So a root hub starts the child as
  `mosquitto` directly (Popen user/group) and sets the death signal afterwards, which survives exec.
- Everything the broker opens (configuration, passwd, acl, log, persistence) must be readable or
  writable by the user it runs as, also on a SIGHUP reload; a log file it cannot write stays empty
  without an error. Its directory's ancestors must let that user through.
- A SIGHUP that arrives before Mosquitto installed its handler kills it, and it installs the
  handler after it starts listening: "ready" means listening *and* SIGHUP caught (/proc status).
- The acl file never checks a SUBSCRIBE (it grants every one, for every user: a gateway's "#" and
  "$SYS/#" were granted; deliveries are checked). The dynamic security plugin, loaded besides
  password_file and acl_file, is asked first: for a client it lists, a role ACL decides, and
  what no ACL decides goes on to the files when its defaultACLAccess is false ("ask the next
  source"; unsubscribe stays true); a client it does not list is passed on entirely, one it
  lists without a password for its login. So field accounts are listed by exact username (the
  plugin has no patterns) with subscribePattern ACLs derived from the acl (readable_topics) above
  a refusal of "#", "$SYS/#" and "$CONTROL/#" (a filter starting with a wildcard matches no "$"
  topic, MQTT 3.1.1 §4.7.2): SUBACK 135 / 0x80. The hub and observers are not listed and keep
  what the acl grants.
- SIGHUP re-reads passwd and acl but not the plugin's JSON, which it reads at start and rewrites
  itself after each change. Live changes go over $CONTROL/dynamic-security/v1 as DYNSEC_ADMIN
  (sync_and_reload): new clients before the SIGHUP, so a new login is restricted from its first
  connection; retired ones after. A persistent session that subscribed before keeps its
  subscriptions (never re-checked); deliveries on them are still checked against the acl.
"""

from __future__ import annotations

import base64
import ctypes
import errno
import fcntl
import hashlib
import json
import logging
import os
import pwd
import queue
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from flask_babel import lazy_gettext as _l
from paho.mqtt.enums import CallbackAPIVersion

logger = logging.getLogger(__name__)

HUB_PAYLOAD_LIMIT = 524288
"""The hub's default `ingest.max_payload_bytes` (512 KiB, DESIGN §5)."""

DEFAULT_MAX_PACKET_SIZE = 2 * HUB_PAYLOAD_LIMIT + 65536
"""Twice the hub's payload limit plus 64 KiB for topic, properties and headers (1,114,112 bytes):
a publish up to this size reaches the hub and is dead-lettered as `too_large`; a bigger one makes
the broker disconnect the publisher and the message vanishes (NOTES.md)."""

PASSWD_FILE = "passwd"
ACL_FILE = "acl"
CONF_FILE = "mosquitto.conf"
LOG_FILE = "mosquitto.log"
PID_FILE = "mosquitto.pid"
PERSISTENCE_FILE = "mosquitto.db"
SUBSCRIBERS_FILE = "subscribers.json"
"""The field accounts and the topic filters each may subscribe to, written with passwd and acl:
what the dynamic security plugin must hold (DYNSEC_FILE at start, its admin topic on a reload)."""
DYNSEC_FILE = "dynsec.json"
DYNSEC_ADMIN_FILE = "dynsec-admin"
DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"
DYNSEC_ADMIN = "_dynsec"
"""The plugin's admin login: a leading "_" is no username the hub accepts (_USERNAME), so no
account can ever take this name."""
DYNSEC_TOPIC = "$CONTROL/dynamic-security/v1"
DYNSEC_RESPONSE = f"{DYNSEC_TOPIC}/response"
# Field accounts are listed in the plugin and refused a SUBSCRIBE outside what their acl lets
# them read; the hub and observers are not listed, so the plugin asks the acl file for them.
FIELD_ROLES = ("gateway", "terminal", "device")
_ROLE_PREFIX = "subscribe-"
_DYNSEC_TIMEOUT_S = 5.0

BROKER_USER = "mosquitto"
ROLES = ("hub", "gateway", "observer", "terminal", "device")

# Topics of a hub account and the patterns every account gets (DESIGN §5 MQTT table).
# config/mosquitto.acl documents the same rules for a production broker; a test keeps them equal.
HUB_TOPICS = ("rescuehub/#", "owntracks/#")
# An observer (a monitoring tool) reads what the hub reads and writes nothing. The patterns below
# apply to every user, so they would let it write its own readings, status and OwnTracks topics:
# `topic deny` lines first in its block close exactly those (Mosquitto checks a user's own lines
# in order, before the patterns; no gateway shares an observer's name, the hub skips an observer
# that would).
OBSERVER_TOPICS = HUB_TOPICS
OBSERVER_DENIED = ("rescuehub/v1/readings/{name}", "rescuehub/v1/status/{name}",
                   "owntracks/{name}/#")
# A gateway reads every village's warnings (a field station may drive a siren). A line of its
# own, not a pattern: a pattern would open every village's topic to a terminal too, and no deny
# line can take that back for all villages but one (Mosquitto checks a user's deny lines first,
# so `deny warnings/#` would also close the terminal's own village).
GATEWAY_TOPICS = ("rescuehub/v1/warnings/#",)
# A village broadcast terminal (a loudspeaker) reads its own village's warning topic, given per
# account (BrokerAccount.topics), and the hub's status; it writes nothing: the deny lines close
# the own-name topics the patterns below would open to it, as for an observer.
TERMINAL_DENIED = OBSERVER_DENIED
# A member's phone (OwnTracks, `rescuehub device add`) reads and writes its own OwnTracks tree
# only, through the pattern below; the deny lines close the readings and status topics the
# patterns would open to it under its name, so a phone can never pose as a sensor gateway.
DEVICE_DENIED = ("rescuehub/v1/readings/{name}", "rescuehub/v1/status/{name}")
ACL_PATTERNS = (
    "pattern write rescuehub/v1/readings/%u",
    "pattern write rescuehub/v1/status/%u",
    "pattern read rescuehub/v1/hub/status",
    "pattern readwrite owntracks/%u/#",
)

# mosquitto_passwd 2.0's defaults for "$7$" (PBKDF2-HMAC-SHA512): 101 iterations, 12-byte salt.
_PBKDF2_ITERATIONS = 101
_SALT_BYTES = 12

# An MQTT username is substituted for %u in topic patterns: "/", "+" and "#" would widen them,
# ":" would break the password file. The hub's user and gateway codes fit inside this.
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PASSWORD_HASH = re.compile(r"^\$[67]\$[^\s:]+$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# A topic an account is given by name: printable ASCII without spaces (a space or a line break
# would end the ACL line and start another), no wildcards and no %-substitutions.
_TOPIC = re.compile(r"^[!-~]{1,200}$")

_PR_SET_PDEATHSIG = 1
_SUPERVISE_POLL_S = 0.2
_BACKOFF_FIRST_S = 1.0
_BACKOFF_MAX_S = 30.0
_STABLE_S = 60.0  # a broker that ran this long before it died restarts after the first backoff


class BrokerError(Exception):
    """The managed broker cannot do what was asked; the message says what to do next."""


@dataclass(frozen=True)
class BrokerAccount:
    """One MQTT login: a name, its Mosquitto password hash, its role (one of ROLES) and, for a
    terminal, the topics it may read."""

    username: str
    password_hash: str
    role: str
    topics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_username(self.username)
        if not _PASSWORD_HASH.match(self.password_hash):
            raise ValueError(f"not a Mosquitto password hash for {self.username!r}")
        if self.role not in ROLES:
            raise ValueError(f"unknown broker role {self.role!r} (expected one of {ROLES})")
        if (self.role == "terminal") != bool(self.topics):
            raise ValueError(f"{self.username!r}: a terminal, and only a terminal, names its "
                             "topics")
        for topic in self.topics:
            if not _TOPIC.match(topic) or any(c in topic for c in "+#%"):
                raise ValueError(f"{self.username!r}: {topic!r} cannot be an ACL topic here")


def check_username(name: str) -> str:
    """Return name if it can be an MQTT username here; BrokerError otherwise."""
    if not isinstance(name, str) or not _USERNAME.match(name):
        raise BrokerError(_l(
            "%(name)s cannot be an MQTT username: use 1 to 64 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit.", name=repr(name)))
    return name


def hash_mqtt_password(password: str, *, salt: bytes | None = None) -> str:
    """Hash a password in Mosquitto 2.0's "$7$" PBKDF2-SHA512 password-file format."""
    if not password:
        raise ValueError("an MQTT password must not be empty")
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    if len(salt) != _SALT_BYTES:
        raise ValueError(f"a Mosquitto salt has {_SALT_BYTES} bytes, not {len(salt)}")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    return (f"$7${_PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}"
            f"${base64.b64encode(digest).decode()}")


def render_passwd(accounts: Iterable[BrokerAccount]) -> str:
    """The password file for these accounts."""
    return "".join(f"{a.username}:{a.password_hash}\n" for a in accounts)


def _acl_block(account: BrokerAccount) -> list[str]:
    """The `user` block of one account (its deny lines first, as Mosquitto checks them)."""
    name = account.username
    if account.role == "hub":
        topics = [f"topic readwrite {topic}" for topic in HUB_TOPICS]
    elif account.role == "observer":
        topics = [f"topic deny {topic.format(name=name)}" for topic in OBSERVER_DENIED]
        topics += [f"topic read {topic}" for topic in OBSERVER_TOPICS]
    elif account.role == "gateway":
        topics = [f"topic read {topic}" for topic in GATEWAY_TOPICS]
    elif account.role == "device":
        topics = [f"topic deny {topic.format(name=name)}" for topic in DEVICE_DENIED]
    else:
        topics = [f"topic deny {topic.format(name=name)}" for topic in TERMINAL_DENIED]
        topics += [f"topic read {topic}" for topic in account.topics]
    return [f"user {name}", *topics, ""]


def render_acl(accounts: Iterable[BrokerAccount]) -> str:
    """The ACL file: one block per account, then the patterns every account gets."""
    lines = ["# Written by the hub (dispatch.core.broker); edits are overwritten.", ""]
    for account in accounts:
        lines += _acl_block(account)
    # Patterns apply to every user (topic lines before the first `user` line would apply to
    # anonymous clients only): a gateway writes only its own readings and status; everyone
    # reads the hub's status; a tablet user reads and writes its own OwnTracks tree.
    lines += list(ACL_PATTERNS)
    return "\n".join(lines) + "\n"


def readable_topics(account: BrokerAccount) -> list[str]:
    """The topic filters a field account's acl lets it read: its own `read` lines and the
    `read` patterns for its name, less those its `deny` lines close (the subscriptions the
    dynamic security plugin grants it)."""
    name = account.username
    lines = [line.split(" ", 2)[1:] for line in _acl_block(account)[1:-1]]
    denied = {topic for access, topic in lines if access == "deny"}
    own = [topic for access, topic in lines if access in ("read", "readwrite")]
    for pattern in ACL_PATTERNS:
        _, access, topic = pattern.split(" ", 2)
        if access in ("read", "readwrite"):
            own.append(topic.replace("%u", name))
    return [topic for topic in dict.fromkeys(own) if topic not in denied]


def render_subscribers(accounts: Iterable[BrokerAccount]) -> str:
    """SUBSCRIBERS_FILE: each field account and the topic filters it may subscribe to."""
    wanted = {a.username: readable_topics(a) for a in accounts if a.role in FIELD_ROLES}
    return json.dumps(wanted, indent=1, sort_keys=True) + "\n"


# Refused below a role's grants: "#" matches no topic that starts with "$" (MQTT §4.7.2), so
# $SYS and $CONTROL get a refusal of their own.
_REFUSED = ("#", "$SYS/#", "$CONTROL/#")


def _subscribe_acls(topics: Iterable[str]) -> list[dict]:
    """A field role's ACLs: these filters granted, then every other one refused (the plugin
    checks a role's ACLs by priority, highest first)."""
    acls = [{"acltype": "subscribePattern", "topic": topic, "priority": 1, "allow": True}
            for topic in topics]
    return acls + [{"acltype": "subscribePattern", "topic": topic, "priority": 0, "allow": False}
                   for topic in _REFUSED]


def render_dynsec(wanted: dict[str, list[str]], admin_password_hash: str) -> str:
    """The plugin's configuration (DYNSEC_FILE): its admin login and a client with a role of
    its own per field account, no password (logins come from passwd)."""
    _, _, iterations, salt, digest = admin_password_hash.split("$")
    admin_acls = [
        {"acltype": "publishClientSend", "topic": DYNSEC_TOPIC, "priority": 1, "allow": True},
        {"acltype": "subscribePattern", "topic": DYNSEC_RESPONSE, "priority": 1, "allow": True},
        {"acltype": "publishClientReceive", "topic": DYNSEC_RESPONSE, "priority": 1,
         "allow": True},
    ] + [{"acltype": kind, "topic": topic, "priority": 0, "allow": False}
         for kind in ("publishClientSend", "publishClientReceive", "subscribePattern")
         for topic in _REFUSED]
    config = {
        # false: the plugin asks the next source (password file, acl file) for whatever its
        # clients' roles do not decide; true would grant it.
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                             "subscribe": False, "unsubscribe": True},
        "clients": [{"username": DYNSEC_ADMIN, "password": digest, "salt": salt,
                     "iterations": int(iterations), "roles": [{"rolename": DYNSEC_ADMIN}]}]
                   + [{"username": name, "roles": [{"rolename": _ROLE_PREFIX + name}]}
                      for name in sorted(wanted)],
        "groups": [],
        "roles": [{"rolename": DYNSEC_ADMIN, "acls": admin_acls}]
                 + [{"rolename": _ROLE_PREFIX + name, "acls": _subscribe_acls(wanted[name])}
                    for name in sorted(wanted)],
    }
    return json.dumps(config, indent=1) + "\n"


def write_broker_files(broker_dir: Path, accounts: Iterable[BrokerAccount]) -> None:
    """Write the broker's passwd, acl and subscribers files atomically (mode 0640 in a 0700
    directory)."""
    accounts = list(accounts)
    names = [a.username for a in accounts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"MQTT accounts listed twice: {', '.join(duplicates)}")
    owner = _broker_owner()
    broker_dir = Path(broker_dir)
    broker_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(broker_dir, 0o700)
    if owner is not None:
        os.chown(broker_dir, *owner)
    _write_atomically(broker_dir / PASSWD_FILE, render_passwd(accounts), owner)
    _write_atomically(broker_dir / ACL_FILE, render_acl(accounts), owner)
    _write_atomically(broker_dir / SUBSCRIBERS_FILE, render_subscribers(accounts), owner)


class _SyncFailed(Exception):
    """The dynamic security plugin did not take a command (or could not be reached)."""


class _DynsecAdmin:
    """A short MQTT session as the plugin's admin: send commands, wait for their answers."""

    def __init__(self, host: str, port: int, password: str) -> None:
        self._address = (host, port)
        self._answers: queue.Queue[bytes] = queue.Queue()
        self._acks: queue.Queue[object] = queue.Queue()
        # The broker makes every client id the login (use_username_as_clientid): _sync_lock
        # keeps a second admin session from pushing this one off.
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=DYNSEC_ADMIN,
                                   protocol=paho.MQTTv311, clean_session=True,
                                   reconnect_on_failure=False)
        self._client.username_pw_set(DYNSEC_ADMIN, password)
        self._client.on_connect = lambda _c, _u, _f, reason, _p: self._acks.put(reason)
        self._client.on_subscribe = lambda _c, _u, _m, reasons, _p: self._acks.put(reasons[0])
        self._client.on_message = lambda _c, _u, message: self._answers.put(message.payload)

    def __enter__(self) -> _DynsecAdmin:
        try:
            self._client.connect(*self._address, keepalive=30)
        except OSError as exc:
            raise _SyncFailed(f"cannot connect to {self._address[0]}:{self._address[1]}: "
                              f"{exc.strerror or exc}") from exc
        self._client.loop_start()
        reason = self._ack()
        if reason.is_failure:
            self.__exit__()
            raise _SyncFailed(f"the broker refused the plugin admin's login: {reason}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _ack(self):
        try:
            return self._acks.get(timeout=_DYNSEC_TIMEOUT_S)
        except queue.Empty:
            raise _SyncFailed("no answer from the broker") from None

    def subscribe(self) -> None:
        """Receive the plugin's answers."""
        self._client.subscribe(DYNSEC_RESPONSE, qos=1)
        reason = self._ack()
        if reason.is_failure:
            raise _SyncFailed(f"the broker refused the plugin admin's subscription: {reason}")

    def run(self, commands: list[dict]) -> list[dict]:
        """Send commands in one message; their answers' data, in order (_SyncFailed on an
        error)."""
        if not commands:
            return []
        self._client.publish(DYNSEC_TOPIC, json.dumps({"commands": commands}), qos=1)
        try:
            answer = json.loads(self._answers.get(timeout=_DYNSEC_TIMEOUT_S))["responses"]
        except queue.Empty:
            raise _SyncFailed("the dynamic security plugin did not answer") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise _SyncFailed(f"the dynamic security plugin's answer: {exc!r}") from exc
        if len(answer) != len(commands):
            raise _SyncFailed(f"{len(answer)} answers to {len(commands)} commands")
        for command, response in zip(commands, answer, strict=True):
            if response.get("error"):
                target = command.get("username") or command.get("rolename")
                raise _SyncFailed(f"{command['command']} {target}: {response['error']}")
        return [response.get("data", {}) for response in answer]

    def field_accounts(self) -> tuple[dict[str, set[str]], dict[str, dict]]:
        """The plugin's clients (their role names) and field roles (their ACLs by type and
        topic), the admin's left out."""
        clients, roles = self.run([{"command": "listClients", "verbose": True},
                                   {"command": "listRoles", "verbose": True}])
        return ({c["username"]: {r["rolename"] for r in c.get("roles", [])}
                 for c in clients["clients"] if c["username"] != DYNSEC_ADMIN},
                {r["rolename"]: {(a["acltype"], a["topic"]): a for a in r.get("acls", [])}
                 for r in roles["roles"] if r["rolename"].startswith(_ROLE_PREFIX)})


def _additions(wanted: dict[str, list[str]], clients: dict[str, set[str]],
               roles: dict[str, dict]) -> list[dict]:
    """Commands that give every wanted field account its client and role, exactly (a changed
    terminal topic: the old ACL removed, the new one added)."""
    commands: list[dict] = []
    for name in sorted(wanted):
        role = _ROLE_PREFIX + name
        if role not in roles:
            commands.append({"command": "createRole", "rolename": role})
        have = {key: {k: acl.get(k) for k in ("acltype", "topic", "priority", "allow")}
                for key, acl in roles.get(role, {}).items()}
        want = {(acl["acltype"], acl["topic"]): acl for acl in _subscribe_acls(wanted[name])}
        for key in sorted(have.keys() | want.keys()):
            if have.get(key) == want.get(key):
                continue
            if key in have:
                commands.append({"command": "removeRoleACL", "rolename": role,
                                 "acltype": key[0], "topic": key[1]})
            if key in want:
                commands.append({"command": "addRoleACL", "rolename": role, **want[key]})
        if name not in clients:
            commands.append({"command": "createClient", "username": name,
                             "roles": [{"rolename": role}]})
        elif role not in clients[name]:
            commands.append({"command": "addClientRole", "username": name, "rolename": role})
    return commands


def _removals(wanted: dict[str, list[str]], clients: dict[str, set[str]],
              roles: dict[str, dict]) -> list[dict]:
    """Commands that remove the clients and roles of accounts no longer wanted."""
    return ([{"command": "deleteClient", "username": name}
             for name in sorted(clients) if name not in wanted]
            + [{"command": "deleteRole", "rolename": role} for role in sorted(roles)
               if role.removeprefix(_ROLE_PREFIX) not in wanted])


@contextmanager
def _sync_lock(broker_dir: Path) -> Iterator[None]:
    """One plugin admin session per broker at a time (the hub, a CLI command, a test)."""
    fd = os.open(broker_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def sync_and_reload(broker_dir: Path, host: str, port: int, pid: int) -> None:
    """Give the plugin a client for every new field account, then make Mosquitto (pid)
    re-read passwd and acl (SIGHUP), then remove the plugin's clients of accounts gone.

    In this order a new account never logs in before the plugin restricts its subscriptions.
    BrokerError, and no SIGHUP, when the plugin cannot be updated."""
    broker_dir = Path(broker_dir)
    with _sync_lock(broker_dir):
        try:
            wanted = json.loads((broker_dir / SUBSCRIBERS_FILE).read_text(encoding="utf-8"))
            password = (broker_dir / DYNSEC_ADMIN_FILE).read_text(encoding="utf-8").strip()
            with _DynsecAdmin(_client_host(host), port, password) as admin:
                admin.subscribe()
                clients, roles = admin.field_accounts()
                admin.run(_additions(wanted, clients, roles))
                os.kill(pid, signal.SIGHUP)
                removals = _removals(wanted, clients, roles)
                if removals:
                    # The plugin kicks a deleted client with an MQTT 5 DISCONNECT; the reload
                    # closes a removed login's connection as it did before the plugin. Let the
                    # reload come first: the SIGHUP delivered, one round trip more, and the
                    # broker's loop has reloaded before it reads the next command.
                    try:
                        _wait_delivered(pid, signal.SIGHUP)
                        admin.run([{"command": "getDefaultACLAccess"}])
                        admin.run(removals)
                    except _SyncFailed as exc:
                        # Harmless: a client the plugin still lists but passwd no longer has
                        # can neither log in nor subscribe more than before.
                        logger.warning("Removing retired logins from the broker's dynamic "
                                       "security plugin failed (%s); they cannot log in anyway",
                                       exc)
        except FileNotFoundError as exc:
            raise BrokerError(_l(
                "The broker directory %(path)s lacks %(file)s: restart the hub, which writes it.",
                path=broker_dir, file=Path(exc.filename).name)) from exc
        except _SyncFailed as exc:
            raise BrokerError(_l(
                "The broker's subscription rules could not be updated (%(problem)s), so it was "
                "not asked to reload: the changed MQTT logins take effect when the hub restarts. "
                "See %(path)s.", problem=str(exc), path=broker_dir / LOG_FILE)) from exc


def _wait_delivered(pid: int, signum: int, timeout: float = _DYNSEC_TIMEOUT_S) -> None:
    """Wait until process pid has taken signal signum (no longer pending: /proc status)."""
    bit = 1 << (signum - 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
        except OSError:  # gone, or no /proc: nothing more to wait for
            return
        pending = 0
        for line in status.splitlines():
            if line.startswith(("SigPnd:", "ShdPnd:")):
                pending |= int(line.split()[1], 16)
        if not pending & bit:
            return
        time.sleep(0.005)


def _client_host(host: str) -> str:
    """An address to reach a listener on host from this machine (a wildcard: loopback)."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def _find_dynsec_plugin() -> str:
    """Where the dynamic security plugin of the installed Mosquitto is."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    for directory in (f"/usr/lib/{multiarch}", "/usr/lib", "/usr/lib64", "/usr/local/lib",
                      "/usr/lib/mosquitto"):
        candidate = Path(directory) / DYNSEC_PLUGIN
        if candidate.is_file():
            return str(candidate)
    raise BrokerError(_l("Mosquitto's dynamic security plugin (%(file)s) was not found: install "
                         "Mosquitto 2.0 or newer (apt-get install mosquitto).",
                         file=DYNSEC_PLUGIN))


class ManagedBroker:
    """A Mosquitto child process on the hub's MQTT port, with the project's configuration."""

    def __init__(self, *, host: str, port: int, broker_dir: Path, template: Path,
                 executable: str = "mosquitto",
                 max_packet_size: int = DEFAULT_MAX_PACKET_SIZE) -> None:
        if max_packet_size <= HUB_PAYLOAD_LIMIT:
            raise ValueError("max_packet_size must exceed the hub's payload limit (DESIGN §5)")
        self.host = host
        self.port = port
        self.broker_dir = Path(broker_dir).resolve()
        self.template = Path(template)
        self.executable = executable
        self.max_packet_size = max_packet_size
        self._lock = threading.RLock()
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def conf_path(self) -> Path:
        """The rendered configuration the child runs with."""
        return self.broker_dir / CONF_FILE

    @property
    def log_path(self) -> Path:
        """The broker's log (its own log lines and anything it writes to stdout/stderr)."""
        return self.broker_dir / LOG_FILE

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self.pid is not None

    def start(self, timeout: float = 5.0) -> None:
        """Render the configuration, spawn Mosquitto and wait until it listens."""
        # PR_SET_PDEATHSIG fires when the *thread* that spawned the child ends: call start() from
        # a thread that lives as long as the broker should (the main thread in the CLI).
        with self._lock:
            if self.running:
                return
            self._stopping.clear()
            self._spawn(timeout)

    def supervise(self) -> None:
        """Restart the broker in a daemon thread whenever it exits unexpectedly."""
        with self._lock:
            if self._supervisor is not None and self._supervisor.is_alive():
                return
            self._stopping.clear()
            self._supervisor = threading.Thread(target=self._supervise, name="mosquitto-supervisor",
                                                daemon=True)
            self._supervisor.start()

    def reload(self) -> None:
        """Bring the plugin's field clients in line with the files and make Mosquitto re-read
        its passwd and acl files (sync_and_reload)."""
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                # Not an error: a broker that starts (or restarts) reads the files anyway.
                logger.info("Mosquitto is not running; it reads the new accounts when it starts")
                return
            try:
                sync_and_reload(self.broker_dir, self.host, self.port, process.pid)
            except ProcessLookupError:
                logger.info("Mosquitto exited; it reads the new accounts when it starts")
                return
            logger.info("Asked Mosquitto (pid %s) to reload its passwd and acl", process.pid)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop supervision and the broker (SIGTERM, then SIGKILL); remove the pid file."""
        self._stopping.set()
        with self._lock:
            process, self._process = self._process, None
            if process is not None:
                _terminate(process, timeout)
                logger.info("Mosquitto (pid %s) stopped with status %s", process.pid,
                            process.returncode)
            (self.broker_dir / PID_FILE).unlink(missing_ok=True)
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(timeout)
        self._supervisor = None

    # --- internals ---------------------------------------------------------------------------

    def _spawn(self, timeout: float) -> None:
        executable = _find_executable(self.executable)
        if _port_taken(self.host, self.port):
            raise BrokerError(_l(
                "Port %(port)s on %(host)s is already in use by another program, so the hub "
                "cannot start its own MQTT broker there: set RESCUEHUB_MQTT_URL to another port, "
                "or set mqtt.managed = false to use the broker that listens on %(port)s.",
                port=self.port, host=self.host))
        owner = _broker_owner()
        if owner is not None:
            _check_reachable(self.broker_dir, *owner)
        self._prepare_files(owner)
        try:
            with open(self.log_path, "ab") as log:
                self._process = subprocess.Popen(
                    [executable, "-c", str(self.conf_path)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    # Its own process group: a terminal's Ctrl-C (SIGINT to the foreground group)
                    # then reaches only the hub, which stops the broker once, in order, after its
                    # own MQTT client is done; in the hub's group the broker would die at the same
                    # moment and the supervisor would race to restart it. A crash of the hub is
                    # covered by the death signal instead.
                    process_group=0,
                    preexec_fn=_death_signal_setter(),
                    **_child_credentials(owner),
                )
        except OSError as exc:
            raise BrokerError(_l("Cannot run %(program)s (%(problem)s): reinstall it (apt-get "
                                 "install mosquitto) or set mqtt.mosquitto to a working one.",
                                 program=executable, problem=exc.strerror)) from exc
        self._started_at = time.monotonic()
        try:
            self._wait_ready(timeout)
        except BrokerError:
            _terminate(self._process, 1.0)
            self._process = None
            raise
        _write_atomically(self.broker_dir / PID_FILE, f"{self._process.pid}\n", None, mode=0o644)
        logger.info("Mosquitto (pid %s) listens on %s:%s", self._process.pid, self.host, self.port)

    def _prepare_files(self, owner: tuple[int, int] | None) -> None:
        if not (self.broker_dir / PASSWD_FILE).exists():
            raise BrokerError(_l("The broker directory %(path)s has no password file: write "
                                 "the broker accounts first (write_broker_files).",
                                 path=self.broker_dir))
        try:
            wanted = json.loads((self.broker_dir / SUBSCRIBERS_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:  # files written before the plugin: not started open
            raise BrokerError(_l("The broker directory %(path)s has no %(file)s: write the "
                                 "broker accounts again (write_broker_files).",
                                 path=self.broker_dir, file=SUBSCRIBERS_FILE)) from exc
        _write_atomically(self.conf_path, self._render_config(), owner)
        # The plugin reads its file only when the broker starts: written fresh each time from
        # the accounts, whatever an earlier run left (a directory from before the plugin too).
        _write_atomically(self.broker_dir / DYNSEC_FILE,
                          render_dynsec(wanted, hash_mqtt_password(self._admin_password())), owner)
        self.log_path.touch(mode=0o640, exist_ok=True)
        if owner is not None:
            # Also a persistence file left by a broker that ran as root before.
            for path in (self.log_path, self.broker_dir / PERSISTENCE_FILE):
                if path.exists():
                    os.chown(path, *owner)

    def _admin_password(self) -> str:
        """The plugin admin's password, kept in DYNSEC_ADMIN_FILE for the CLI's reloads (only
        the hub's user reads it; the broker knows its hash)."""
        path = self.broker_dir / DYNSEC_ADMIN_FILE
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            password = secrets.token_urlsafe(24)
            _write_atomically(path, password + "\n", None, mode=0o600)
            return password

    def _render_config(self) -> str:
        values = {
            "dynsec_plugin": _find_dynsec_plugin(),
            "listener_host": self.host,
            "listener_port": str(self.port),
            "broker_dir": str(self.broker_dir),
            "max_packet_size": str(self.max_packet_size),
        }
        return render_config(self.template.read_text(encoding="utf-8"), values)

    def _wait_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            status = self._process.poll()
            if status is not None:
                raise BrokerError(_l(
                    "Mosquitto exited during start-up with status %(status)s (%(line)s): see "
                    "%(path)s and fix the cause.", status=status,
                    line=_last_line(self.log_path), path=self.log_path))
            if _ready(self._process.pid, self.port):
                return
            if time.monotonic() > deadline:
                raise BrokerError(_l(
                    "Mosquitto did not start listening on port %(port)s within %(seconds)g s: "
                    "see %(path)s for the reason.", port=self.port, seconds=timeout,
                    path=self.log_path))
            time.sleep(0.01)

    def _supervise(self) -> None:
        delay = _BACKOFF_FIRST_S
        while not self._stopping.wait(_SUPERVISE_POLL_S):
            process = self._process
            if process is None or process.poll() is None:
                continue
            uptime = time.monotonic() - self._started_at
            delay = _BACKOFF_FIRST_S if uptime >= _STABLE_S else delay
            logger.warning("Mosquitto (pid %s) exited unexpectedly with status %s; restarting in "
                           "%.0f s", process.pid, process.returncode, delay)
            if self._stopping.wait(delay):
                return
            self._restart_once()
            delay = min(delay * 2, _BACKOFF_MAX_S)

    def _restart_once(self) -> None:
        try:
            with self._lock:
                if not self._stopping.is_set() and not self.running:
                    self._spawn(timeout=5.0)
        except BrokerError as exc:
            logger.warning("Restarting Mosquitto failed: %s", exc)
        except Exception:  # a thread boundary: log with the traceback and keep supervising
            logger.exception("Restarting Mosquitto failed")


def render_config(template: str, values: dict[str, str]) -> str:
    """Substitute `{name}` placeholders outside comments; braces elsewhere stay as they are."""
    lines = []
    for number, line in enumerate(template.splitlines(keepends=True), start=1):
        if not line.lstrip().startswith("#"):
            unknown = [n for n in _PLACEHOLDER.findall(line) if n not in values]
            if unknown:
                raise ValueError(f"unknown placeholder {{{unknown[0]}}} on line {number}")
            line = _PLACEHOLDER.sub(lambda m: values[m.group(1)], line)
        lines.append(line)
    return "".join(lines)


def signal_running_broker(broker_dir: Path) -> bool:
    """Make the managed broker of this directory reload its files; False if none runs."""
    broker_dir = Path(broker_dir).resolve()
    try:
        pid = int((broker_dir / PID_FILE).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return False
    if not _is_managed_mosquitto(pid, broker_dir / CONF_FILE):
        return False
    try:
        host, port = _listener(broker_dir / CONF_FILE)
        sync_and_reload(broker_dir, host, port, pid)
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        raise BrokerError(_l("Cannot signal the hub's broker (pid %(pid)s): run this command as "
                             "the user that runs the hub.", pid=pid)) from exc
    logger.info("Asked Mosquitto (pid %s) to reload its passwd and acl", pid)
    return True


def _listener(conf_path: Path) -> tuple[str, int]:
    """The host and port of the rendered configuration's listener."""
    for line in conf_path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "listener":
            return fields[2], int(fields[1])
    raise BrokerError(_l("%(path)s names no listener: restart the hub, which writes it.",
                         path=conf_path))


# --- helpers ---------------------------------------------------------------------------------

def _broker_owner() -> tuple[int, int] | None:
    """(uid, gid) the broker runs as when that differs from us: root with a `mosquitto` user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(BROKER_USER)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _child_credentials(owner: tuple[int, int] | None) -> dict:
    if owner is None:
        return {}
    uid, gid = owner
    return {"user": uid, "group": gid, "extra_groups": []}


def _write_atomically(path: Path, text: str, owner: tuple[int, int] | None,
                      mode: int = 0o640) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)
            if owner is not None:
                os.fchown(handle.fileno(), *owner)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _find_executable(executable: str) -> str:
    # Debian installs mosquitto in /usr/sbin, which is not on an ordinary user's PATH.
    found = shutil.which(executable)
    if found is None and os.sep not in executable:
        found = shutil.which(executable, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise BrokerError(_l("The MQTT broker program %(program)s was not found: install it "
                             "(apt-get install mosquitto) or set mqtt.mosquitto to its path.",
                             program=repr(executable)))
    return found


def _port_taken(host: str, port: int) -> bool:
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BrokerError(_l("The MQTT host %(host)s does not resolve: set RESCUEHUB_MQTT_URL "
                             "to an address of this machine.", host=repr(host))) from exc
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            # SO_REUSEADDR as Mosquitto sets it: connections of a previous broker in TIME_WAIT
            # do not count, a listening socket (or one bound without it) does.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
                if exc.errno != errno.EADDRNOTAVAIL:  # e.g. no IPv6 on this host
                    raise
    return False


def _first_closed(broker_dir: Path, uid: int, gid: int) -> Path | None:
    """The first directory above broker_dir that user uid/gid may not pass through, if any."""
    for directory in reversed(broker_dir.parents):
        info = directory.stat()
        if info.st_uid == uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return directory
    return None


def _check_reachable(broker_dir: Path, uid: int, gid: int) -> None:
    """Raise unless user uid/gid may pass through every directory above broker_dir."""
    closed = _first_closed(broker_dir, uid, gid)
    if closed is not None:
        raise BrokerError(_l(
            "The broker runs as user %(user)s, which cannot enter %(path)s: run `chmod o+x "
            "%(path)s` or set data.dir to a directory that user can reach.",
            user=BROKER_USER, path=closed))


RELOCATED_ROOT = Path("/var/lib/rescuehub/mosquitto")
"""Where a root hub keeps the broker's files when its data directory is closed to `mosquitto`."""


def reachable_broker_dir(wanted: Path, relocated_root: Path = RELOCATED_ROOT) -> Path:
    """The broker directory `wanted`, made reachable for the user the broker runs as.

    A root hub runs Mosquitto as `mosquitto` (never as root), and a clone in a mode-700 directory
    (root's /root, any `mktemp -d`) is closed to that user. Rather than open the user's
    directories, the files then live in `relocated_root/<hash of wanted>` (0700, owned by
    `mosquitto`; the parents 0711, traverse only) and `wanted` becomes a symlink to it, so every
    path the hub and the CLI use stays under the data directory. Files already in `wanted` move
    along. Returns `wanted` (a directory or that symlink)."""
    owner = _broker_owner()
    wanted = Path(wanted).absolute()
    if owner is None or wanted.is_symlink():
        return wanted
    wanted.parent.mkdir(parents=True, exist_ok=True)
    closed = _first_closed(wanted, *owner)
    if closed is None:
        return wanted
    digest = hashlib.sha256(str(wanted.parent.resolve() / wanted.name).encode()).hexdigest()[:16]
    target = relocated_root / digest
    for directory in reversed([relocated_root, *relocated_root.parents]):
        if not directory.exists():
            directory.mkdir(mode=0o711)
    target.mkdir(mode=0o700, exist_ok=True)
    os.chown(target, *owner)
    if wanted.is_dir():
        for item in wanted.iterdir():
            shutil.move(str(item), target / item.name)
        wanted.rmdir()
    wanted.symlink_to(target, target_is_directory=True)
    logger.info("The broker's files live in %s (linked from %s): user %s cannot enter %s",
                target, wanted, BROKER_USER, closed)
    return wanted


def _death_signal_setter() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when its parent dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded in the parent: the child only calls it

    def set_death_signal() -> None:
        # SIGTERM, not SIGKILL: Mosquitto then saves its persistence file on the way out.
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")

    return set_death_signal


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        logger.warning("Mosquitto (pid %s) ignored SIGTERM for %s s; killing it", process.pid,
                       timeout)
        process.kill()
        process.wait()


def _ready(pid: int, port: int) -> bool:
    """Whether process pid listens on port and has its SIGHUP handler installed."""
    if not os.path.exists("/proc/self/status"):  # no /proc: trying the port is all we can do
        with socket.socket() as probe:
            probe.settimeout(0.2)
            return probe.connect_ex(("127.0.0.1", port)) == 0
    try:
        return _catches_sighup(pid) and _listens(pid, port)
    except OSError:  # it just exited; the caller's poll() says so next
        return False


def _catches_sighup(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGHUP - 1)))
    return False


def _listens(pid: int, port: int) -> bool:
    """Whether one of pid's sockets is in LISTEN state on port (/proc/net/tcp, tcp6)."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                listening.add(f"socket:[{fields[9]}]")
    if not listening:
        return False
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(fd_dir / fd) in listening:
                return True
        except FileNotFoundError:
            continue
    return False


def _is_managed_mosquitto(pid: int, conf_path: Path) -> bool:
    """Whether pid is a live mosquitto started with this configuration file."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return False
    if "\nState:\tZ" in status:  # a zombie is dead, even if nobody reaped it yet
        return False
    return (os.path.basename(argv[0]).startswith(b"mosquitto")
            and os.fsencode(conf_path) in argv[1:])


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][-200:] if lines else "no log lines"
