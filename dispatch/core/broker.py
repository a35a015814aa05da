"""The hub's managed Mosquitto broker: password and ACL files, and a supervised child process.

Plain Python and the standard library only (no Flask, no database): the CLI's `gateway add` uses
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
"""

from __future__ import annotations

import base64
import ctypes
import errno
import hashlib
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from flask_babel import lazy_gettext as _l

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


def write_broker_files(broker_dir: Path, accounts: Iterable[BrokerAccount]) -> None:
    """Write the broker's passwd and acl files atomically (mode 0640 in a 0700 directory)."""
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
        """Make Mosquitto re-read its passwd and acl files (SIGHUP)."""
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                # Not an error: a broker that starts (or restarts) reads the files anyway.
                logger.info("Mosquitto is not running; it reads the new accounts when it starts")
                return
            process.send_signal(signal.SIGHUP)
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
        _write_atomically(self.conf_path, self._render_config(), owner)
        self.log_path.touch(mode=0o640, exist_ok=True)
        if owner is not None:
            # Also a persistence file left by a broker that ran as root before.
            for path in (self.log_path, self.broker_dir / PERSISTENCE_FILE):
                if path.exists():
                    os.chown(path, *owner)

    def _render_config(self) -> str:
        values = {
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
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        raise BrokerError(_l("Cannot signal the hub's broker (pid %(pid)s): run this command as "
                             "the user that runs the hub.", pid=pid)) from exc
    logger.info("Asked Mosquitto (pid %s) to reload its passwd and acl", pid)
    return True


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
