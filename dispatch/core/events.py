"""Cross-package signals (DESIGN §2): the in-process event bus that lets a package react to
another without importing it (the evacuation planner to a road closed on the map, or to an
alert raised). Every signal one package sends and another may receive is declared here, with the
dataclass it carries, so sender and receiver import only the kernel.

Rules: send after the commit that made the payload true (a receiver must never act on what a
rollback undoes); a receiver that fails is logged and the others still run, and the sender's
request or job goes on. A signal reaches receivers in the sending process only: work that must
follow a commit made in another process (the ingest writer's, a web process's) uses a durable
mark written in the same transaction and a job that sweeps the marks (STYLE.md), never a signal
alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from blinker import Namespace

log = logging.getLogger(__name__)

bus = Namespace()
P = TypeVar("P")


class Signal(Generic[P]):
    """A named signal that carries one payload type."""

    def __init__(self, name: str, payload: type[P]):
        self.name = name
        self.payload = payload
        self._signal = bus.signal(name)

    def connect(self, receiver: Callable[[P], None]) -> Callable[[P], None]:
        """Call `receiver(payload)` on every send (held strongly; usable as a decorator)."""
        self._signal.connect(receiver, weak=False)
        return receiver

    def disconnect(self, receiver: Callable[[P], None]) -> None:
        self._signal.disconnect(receiver)

    def send(self, payload: P) -> None:
        """Call every receiver with the payload (after the commit: module docstring)."""
        if not isinstance(payload, self.payload):
            raise TypeError(f"signal {self.name} carries {self.payload.__name__}, "
                            f"not {type(payload).__name__}")
        for receiver in list(self._signal.receivers_for(payload)):
            try:
                receiver(payload)
            except Exception:
                log.exception("a receiver of signal %s failed", self.name)


# --- the signals --------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeatureChanged:
    """A map feature was created, updated or deleted, or a file of them imported (sent by maps;
    for the evacuation planner: roads opened or closed, shelters' status and occupancy)."""

    layer: str  # villages | shelters | hazards | roads
    action: str  # create | update | delete | import
    code: str | None  # None for an import


feature_changed = Signal("maps.feature_changed", FeatureChanged)


@dataclass(frozen=True)
class ReadingsStored:
    """Readings were committed (sent by telemetry in the process that learns of the commit: the
    MQTT bridge's parent after its writer's batch, or the HTTP ingest view); for the warning
    rules, which evaluate the subjects of these sensors right after."""

    sensor_ids: frozenset[int]
    # Those of them with a reading that is not 0 (rain fell, a slope moved, a level stood): a
    # batch of 0 mm rain reports cannot raise a warning (alerts judges their subjects only
    # when an alert is active there). None: not known, treat every sensor as changed.
    nonzero_ids: frozenset[int] | None = None


readings_stored = Signal("telemetry.readings_stored", ReadingsStored)


@dataclass(frozen=True)
class WarningChanged:
    """Villages' or hazard zones' warning levels changed (sent by alerts after the commit that
    wrote them onto their rows; for the evacuation planner and the map)."""

    villages: tuple[str, ...]
    hazards: tuple[str, ...]


warning_changed = Signal("alerts.warning_changed", WarningChanged)
