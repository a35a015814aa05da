"""Secrets the hub generates once and keeps in the data directory when settings leave them empty."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def secrets_folder(data_dir: Path) -> Path:
    """data_dir/secrets, created or tightened to mode 0700 (its owner only)."""
    folder = data_dir / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkdir's mode leaves a folder that exists alone (made by hand, an older hub, a restored
    # copy): tighten it, so no other local user can list or open what it holds.
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    return folder


def _private(path: Path) -> Path:
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return path


def stored_secret(data_dir: Path, name: str, nbytes: int = 32) -> str:
    """Read data_dir/secrets/<name>, creating it (mode 0600) with a random value the first time."""
    folder = secrets_folder(data_dir)
    path = folder / name
    try:
        return _private(path).read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(nbytes)
    tmp = folder / f".{name}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    try:
        os.link(tmp, path)  # fails if another process won the race: use theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def write_secret(data_dir: Path, name: str, value: str) -> Path:
    """Keep a generated secret (e.g. a demo gateway's credentials) in data_dir/secrets, 0600."""
    path = secrets_folder(data_dir) / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode does nothing to a file that exists
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return path
