"""The embedded base's conversion cache: concurrent sessions convert once, a killed one leaves nothing.

The GGUF dequantisation itself (30 s, real weights) is replaced by copying a tiny model, slowly, so
that the processes really overlap; the lock, staging and rename are the product's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pytest_toolsel.models.embedded import embedded_base_dir
from pytest_toolsel.models.loading import load_model

CONVERT = textwrap.dedent(
    """
    import shutil, sys, time
    from pathlib import Path
    import pytest_toolsel.models.embedded as embedded

    source, log, pause = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])

    def slow_copy(packaged, directory):
        with log.open("a") as out:
            out.write("converting\\n")
        for file in sorted(source.iterdir()):
            shutil.copy(file, directory / file.name)
            time.sleep(pause)

    embedded.dequantise = slow_copy
    print(embedded.embedded_base_dir())
    """
)


def converter(tiny_base: Path, cache: Path, pause: float) -> subprocess.Popen:
    env = {**os.environ, "PYTEST_TOOLSEL_CACHE": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-c", CONVERT, str(tiny_base), str(cache / "conversions.log"), str(pause)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def staging_dirs(cache: Path) -> list[Path]:
    return [p for p in cache.iterdir() if p.name.startswith(".") and p.is_dir()]


def test_concurrent_sessions_convert_once_and_all_get_the_complete_directory(tmp_path, tiny_base, monkeypatch):
    processes = [converter(tiny_base, tmp_path, pause=0.2) for _ in range(3)]
    results = [process.communicate(timeout=120) for process in processes]

    assert [process.returncode for process in processes] == [0, 0, 0], [err for _, err in results]
    paths = {out.strip() for out, _ in results}
    assert len(paths) == 1
    assert (tmp_path / "conversions.log").read_text().count("converting") == 1
    assert staging_dirs(tmp_path) == []
    monkeypatch.setenv("PYTEST_TOOLSEL_CACHE", str(tmp_path))
    assert str(embedded_base_dir()) == paths.pop()
    assert load_model(str(embedded_base_dir()), require_template=False).model.config.hidden_size == 64


def test_a_conversion_killed_midway_leaves_nothing_loadable_and_the_next_one_finishes(tmp_path, tiny_base):
    victim = converter(tiny_base, tmp_path, pause=5.0)
    deadline = time.monotonic() + 60
    while not (tmp_path / "conversions.log").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the first file is in the staging directory
    victim.kill()
    victim.communicate()
    assert [p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")] == []
    assert len(staging_dirs(tmp_path)) == 1

    rerun = converter(tiny_base, tmp_path, pause=0.0)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert (Path(out.strip()) / "model.safetensors").is_file()
    assert staging_dirs(tmp_path) == []
