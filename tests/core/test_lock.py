"""The Python locks (requirements*.txt at the root) agree with pyproject.toml.

Installs come from the locks with exact versions and hashes (.ci/setup.sh), so a release upstream
cannot change what a fresh clone gets. These checks read the files only: they fail when a
dependency is added, dropped or narrowed in pyproject.toml without `make lock`, never because of a
new release upstream.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "township-rescue-hub"
LOCKS = {"base": ROOT / "requirements.txt",
         "test": ROOT / "requirements-test.txt"}
# pip and the build backend, installed first (.ci/setup.sh), the editable install without build
# isolation so that pip fetches no backend of its own.
BUILD_LOCK = ROOT / "requirements-build.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s\\;]+)")


def direct_requirements(extras: str) -> list[Requirement]:
    """What pyproject.toml asks for directly, for the base install or with the test extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    if extras == "test":
        wanted += project["optional-dependencies"]["test"]
    return [Requirement(r) for r in wanted]


def read_lock(path: Path) -> tuple[dict[str, str], dict[str, list[str]], set[str]]:
    """(name -> pinned version, name -> hashes, names pinned because pyproject asked for them)."""
    pins: dict[str, str] = {}
    hashes: dict[str, list[str]] = {}
    direct: set[str] = set()
    current = None
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = match.group(3)
            hashes[current] = []
        elif current and "--hash=sha256:" in line:
            hashes[current].append(line.split("--hash=sha256:")[1].split()[0])
        elif current and f"{PROJECT} (pyproject.toml)" in line:
            direct.add(current)
    return pins, hashes, direct


@pytest.mark.parametrize("extras", sorted(LOCKS))
def test_every_direct_dependency_is_pinned_within_its_range(extras):
    pins, _, _ = read_lock(LOCKS[extras])
    problems = []
    for req in direct_requirements(extras):
        name = canonicalize_name(req.name)
        if req.marker is not None and not req.marker.evaluate({"extra": extras}):
            continue
        if name not in pins:
            problems.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{req.name}=={pins[name]} does not satisfy '{req.specifier}'")
    assert not problems, f"{LOCKS[extras].name}: {problems}; run `make lock`"


@pytest.mark.parametrize("extras", sorted(LOCKS))
def test_the_lock_holds_nothing_pyproject_dropped(extras):
    _, _, direct = read_lock(LOCKS[extras])
    asked = {canonicalize_name(r.name) for r in direct_requirements(extras)}
    stale = sorted(direct - asked)
    assert not stale, f"{LOCKS[extras].name} pins {stale} for pyproject.toml; run `make lock`"


@pytest.mark.parametrize("extras", sorted(LOCKS))
def test_every_pin_carries_hashes(extras):
    pins, hashes, _ = read_lock(LOCKS[extras])
    assert pins, f"{LOCKS[extras].name} pins nothing"
    unhashed = sorted(name for name in pins if not hashes[name])
    assert not unhashed, f"{unhashed} have no --hash in {LOCKS[extras].name}; run `make lock`"
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for hs in hashes.values() for h in hs)


def test_the_test_lock_installs_the_same_base_packages():
    # `make run` after `make test` must not change a package: the base pins are the test pins.
    base, _, _ = read_lock(LOCKS["base"])
    test, _, _ = read_lock(LOCKS["test"])
    differ = {n: (v, test.get(n)) for n, v in base.items() if test.get(n) != v}
    assert not differ, f"base and test locks pin these differently: {differ}; run `make lock`"


def test_the_build_lock_pins_pip_and_the_build_backend_with_hashes():
    pins, hashes, _ = read_lock(BUILD_LOCK)
    system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    wanted = [Requirement(r) for r in system["requires"]]
    pip_version = re.search(r"^PIP_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    wanted.append(Requirement(f"pip=={pip_version.group(1)}"))
    problems = [str(req) for req in wanted if not req.specifier.contains(
        pins.get(canonicalize_name(req.name), "0"), prereleases=True)]
    assert not problems, f"{BUILD_LOCK.name} does not pin {problems}; run `make lock`"
    unhashed = sorted(name for name in pins if not hashes[name])
    assert not unhashed, f"{unhashed} have no --hash in {BUILD_LOCK.name}; run `make lock`"
