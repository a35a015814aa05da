"""Benchmark: build the demo prefecture and serve map layers for panning views with `?bbox=`.

Prints, per backend (SpatiaLite, and PostGIS when reachable):
- the time of `rescuehub demo --scale prefecture` (generate + load; target under 60 s);
- p50/p95 of GET /api/v1/layers/{villages,roads,shelters}?bbox=… for 60 random tablet-sized
  views, through the real app (routing, auth, GeoJSON), and the ratio to the reference measured
  in the same run: the bare indexed bbox query on the same connection (the database's floor).

Run: .venv/bin/python bench/layers.py   (PostGIS admin URL: RESCUEHUB_TEST_DATABASE_URL)
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from geoalchemy2.shape import to_shape
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dispatch import create_app  # noqa: E402
from dispatch.core import auth  # noqa: E402
from dispatch.core.db import db  # noqa: E402
from maps import service  # noqa: E402

RESCUEHUB = str(Path(sys.executable).with_name("rescuehub"))
ADMIN_URL = os.environ.get("RESCUEHUB_TEST_DATABASE_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
VIEWS = 60
# A 10-inch tablet at zoom 13 around 33° N shows about 0.11° x 0.07°.
VIEW_W, VIEW_H = 0.11, 0.07


def load_prefecture(env: dict) -> float:
    started = time.monotonic()
    subprocess.run([RESCUEHUB, "demo", "--scale", "prefecture"], env=env, check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(url: str, data_dir: Path, label: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESCUEHUB_")}
    env.update(RESCUEHUB_DATA_DIR=str(data_dir), RESCUEHUB_DATABASE_URL=url,
               RESCUEHUB_LANG="en")
    seconds = load_prefecture(env)
    app = create_app({"database": {"url": url}, "data": {"dir": str(data_dir)}})
    with app.app_context():
        s = db.session
        user, _ = auth.create_user(s, f"bench{uuid.uuid4().hex[:6]}", "viewer", actor="bench")
        auth.change_password(s, user, "bench password 1")
        token, _ = auth.issue_user_token(s, user, 3600)
        s.commit()
        villages = s.scalar(select(func.count()).select_from(service.Village))
        roads = s.scalar(select(func.count()).select_from(service.RoadSegment))
        nodes = s.execute(text("SELECT count(*) FROM (SELECT source FROM road_segments UNION "
                               "SELECT target FROM road_segments) n")).scalar()
        bounds = [to_shape(t.boundary).bounds for t in service.townships(s)
                  if t.code != "T000"]
        extent = [min(b[0] for b in bounds), min(b[1] for b in bounds),
                  max(b[2] for b in bounds), max(b[3] for b in bounds)]
    print(f"[{label}] prefecture: {villages} villages, {roads} road segments, {nodes} nodes; "
          f"demo --scale prefecture took {seconds:.1f} s (target < 60 s)")
    rng = random.Random(7)
    views = []
    for _ in range(VIEWS):
        x = rng.uniform(extent[0], extent[2] - VIEW_W)
        y = rng.uniform(extent[1], extent[3] - VIEW_H)
        views.append((round(x, 5), round(y, 5), round(x + VIEW_W, 5), round(y + VIEW_H, 5)))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    for layer in ("villages", "roads", "shelters"):
        kind = service.KINDS[layer]
        served, floor, sizes = [], [], []
        for bbox in views:
            started = time.perf_counter()
            response = client.get(f"/api/v1/layers/{layer}?bbox={','.join(map(str, bbox))}",
                                  headers=headers)
            served.append(time.perf_counter() - started)
            assert response.status_code == 200, response.data[:200]
            sizes.append(response.get_json()["numberReturned"])
            with app.app_context():
                s = db.session
                started = time.perf_counter()
                s.execute(select(kind.model.id).where(service.bbox_clause(s, kind, bbox))).all()
                floor.append(time.perf_counter() - started)
                db.remove()
        p50, p95 = percentile(served, 0.5) * 1000, percentile(served, 0.95) * 1000
        ref = statistics.median(floor) * 1000
        print(f"[{label}] {layer:8s} bbox view: p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  "
              f"features/view median {int(statistics.median(sizes))}  "
              f"reference (bare indexed query) p50 {ref:6.2f} ms  ratio {p50 / ref:5.1f}x")
    with app.app_context():
        db.engine.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rescuehub-bench-") as tmp:
        tmp_path = Path(tmp)
        tmp_path.chmod(0o755)
        measure(f"sqlite:///{tmp_path / 'hub.sqlite'}", tmp_path / "var-sl", "SpatiaLite")
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        name = f"rescuehub_bench_{uuid.uuid4().hex[:8]}"
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # no server: report and stop
            print(f"[PostGIS] skipped: {str(exc).splitlines()[0]}")
            return
        try:
            url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
            measure(url, tmp_path / "var-pg", "PostGIS")
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
