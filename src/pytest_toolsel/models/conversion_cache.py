"""The user cache that converted models live in, and converting into it once.

Conversions (a GGUF dequantised into a plain Hugging Face directory) are published under a name
that says what was converted (a content hash), so a directory there is complete and never stale.
Concurrent sessions (xdist workers, parallel CI jobs) serialise on a file lock and publish with an
atomic rename, so nobody ever sees a half-written directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

CACHE_ENV = "PYTEST_TOOLSEL_CACHE"


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "pytest-toolsel"


def is_converted(target: Path) -> bool:
    return (target / "config.json").exists()


def convert_once(target: Path, write: Callable[[Path], None]) -> Path:
    """`target`, filled by `write(staging)` unless an earlier session already published it."""
    if is_converted(target):
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not is_converted(target):
            # Holding the lock, nobody else is converting: staging left here was abandoned by a kill.
            for abandoned in target.parent.glob(f".{target.name}-*"):
                shutil.rmtree(abandoned, ignore_errors=True)
            publish_atomically(target, write)
    return target


def publish_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """`write(staging)` fills a sibling directory, which is renamed to `target` only once complete."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(staging)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
