"""Geofences at villages and shelters, with hysteresis against GPS jitter (pure: shapely in one
metric CRS, no Flask, no database).

A village's fence is its boundary; a shelter is a point, so its fence is a circle of
`positions.shelter_radius_m` around it. For a fix at signed distance `d` from a fence's edge
(negative inside, metres) with accuracy `a` (the radius the phone reports, OwnTracks `acc`,
Android's 68 % circle; unknown counts as 0):

- a member outside **enters** when `d <= min(0, margin - a)`: inside, and a fix less accurate
  than the margin only when it lies at least `a - margin` inside (the edge may be that far off);
- a member inside **leaves** when `d > max(margin, a)`: farther than the margin outside, and a
  fix less accurate than the margin only when it lies farther outside than its own accuracy.

Between the two is a band at least `margin` wide where nothing changes, so a track jittering
along an edge by less than the margin makes one `enter`, not a dozen; a poor fix (a phone on
cell towers reporting `acc` 2,000 m) flips nothing unless it is that far inside or outside.
Each fence is decided on its own: a member in a village and in a shelter inside it is in both.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

PLACE_TYPES = ("village", "shelter")
ENTER, LEAVE = "enter", "leave"

Key = tuple[str, str]  # (place_type, place code)


@dataclass(frozen=True)
class Fence:
    """One place's fence in the metric CRS: a village's (multi)polygon, or a shelter's centre
    with `radius_m` (a circle)."""

    place_type: str
    place: str
    shape: BaseGeometry
    radius_m: float = 0.0
    name: str = ""

    @property
    def key(self) -> Key:
        return (self.place_type, self.place)


@dataclass(frozen=True)
class Fix:
    """A position in the metric CRS at a time, with its accuracy in metres (None: unknown)."""

    ts: datetime
    x: float
    y: float
    accuracy_m: float | None = None


@dataclass(frozen=True)
class Crossing:
    """A member entered or left a fence at the time of the fix that decided it."""

    place_type: str
    place: str
    event: str
    ts: datetime

    @property
    def key(self) -> Key:
        return (self.place_type, self.place)


@dataclass
class Fences:
    """Every fence of one metric CRS, with an STRtree over their envelopes (the candidates a
    fix may be inside), and the hysteresis margin in metres."""

    fences: Sequence[Fence]
    margin_m: float
    _tree: shapely.STRtree = field(init=False, repr=False)
    _index: dict[Key, int] = field(init=False, repr=False)
    _boundaries: list[BaseGeometry | None] = field(init=False, repr=False)
    _centres: np.ndarray = field(init=False, repr=False)
    # GEOS builds a prepared geometry's indexes lazily, on first use, and not thread-safely
    # (libgeos/geos#825), while shapely releases the GIL around GEOS calls: the intake's
    # threads take turns (a step costs tens of microseconds).
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.margin_m) and self.margin_m >= 0):
            raise ValueError("margin_m must be a finite number of metres, 0 or more")
        envelopes = []
        centres = np.zeros((len(self.fences), 2))
        boundaries: list[BaseGeometry | None] = []
        for i, fence in enumerate(self.fences):
            if fence.place_type not in PLACE_TYPES:
                raise ValueError(f"unknown place type {fence.place_type!r}")
            if fence.radius_m > 0:
                x, y = shapely.get_coordinates(fence.shape)[0]
                r = fence.radius_m
                centres[i] = (x, y)
                envelopes.append(shapely.box(x - r, y - r, x + r, y + r))
                boundaries.append(None)
            else:
                # Prepared once: each fix asks "does it contain this point?" of a few fences.
                shapely.prepare(fence.shape)
                envelopes.append(fence.shape)
                boundaries.append(fence.shape.boundary)
        self._tree = shapely.STRtree(envelopes)
        self._index = {fence.key: i for i, fence in enumerate(self.fences)}
        self._boundaries = boundaries
        self._centres = centres

    def __contains__(self, key: Key) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self.fences)

    def fence(self, key: Key) -> Fence:
        """The fence of a place (KeyError when there is none)."""
        return self.fences[self._index[key]]

    def signed_distance(self, key: Key, x: float, y: float) -> float:
        """Metres from the fence's edge to (x, y): negative inside, positive outside."""
        i = self._index[key]
        fence = self.fences[i]
        if fence.radius_m > 0:
            cx, cy = self._centres[i]
            return math.hypot(x - cx, y - cy) - fence.radius_m
        point = Point(x, y)
        with self._lock:
            if shapely.intersects_xy(fence.shape, x, y):
                return -float(shapely.distance(self._boundaries[i], point))
            return float(shapely.distance(fence.shape, point))

    def _enters(self, i: int, x: float, y: float, accuracy: float) -> bool:
        fence = self.fences[i]
        if fence.radius_m > 0:
            cx, cy = self._centres[i]
            d = math.hypot(x - cx, y - cy) - fence.radius_m
            return d <= min(0.0, self.margin_m - accuracy)
        if not shapely.intersects_xy(fence.shape, x, y):
            return False
        if accuracy <= self.margin_m:
            return True
        depth = float(shapely.distance(self._boundaries[i], Point(x, y)))
        return depth >= accuracy - self.margin_m

    def _leaves(self, i: int, x: float, y: float, accuracy: float) -> bool:
        fence = self.fences[i]
        beyond = max(self.margin_m, accuracy)
        if fence.radius_m > 0:
            cx, cy = self._centres[i]
            return math.hypot(x - cx, y - cy) - fence.radius_m > beyond
        # Farther than `beyond` from the polygon (which also means outside it).
        return not shapely.dwithin(fence.shape, Point(x, y), beyond)

    def step(self, inside: set[Key], fix: Fix) -> list[Crossing]:
        """Apply one fix to the set of places the member is inside (changed in place); the
        crossings it makes. Places without a fence here are left alone."""
        if not (math.isfinite(fix.x) and math.isfinite(fix.y)):
            return []
        accuracy = fix.accuracy_m if fix.accuracy_m is not None else 0.0
        if not math.isfinite(accuracy) or accuracy < 0:
            return []
        with self._lock:
            return self._step(inside, fix, accuracy)

    def _step(self, inside: set[Key], fix: Fix, accuracy: float) -> list[Crossing]:
        crossings = []
        for key in sorted(inside):
            i = self._index.get(key)
            if i is not None and self._leaves(i, fix.x, fix.y, accuracy):
                inside.discard(key)
                crossings.append(Crossing(key[0], key[1], LEAVE, fix.ts))
        for i in sorted(self._tree.query(Point(fix.x, fix.y))):
            key = self.fences[i].key
            if key not in inside and self._enters(int(i), fix.x, fix.y, accuracy):
                inside.add(key)
                crossings.append(Crossing(key[0], key[1], ENTER, fix.ts))
        return crossings

    def track(self, inside: Iterable[Key], fixes: Sequence[Fix]) -> tuple[set[Key],
                                                                           list[Crossing]]:
        """Apply fixes in time order (ties keep their order) from the places the member is
        inside; the places inside after them and the crossings, oldest first."""
        now = set(inside)
        crossings: list[Crossing] = []
        for fix in sorted(fixes, key=lambda f: f.ts):
            crossings += self.step(now, fix)
        return now, crossings
