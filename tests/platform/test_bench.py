"""Every bench script still runs: each in its tiny mode, so none can rot unnoticed.

The figures of a tiny run mean nothing; `make bench` runs the real sizes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "bench").glob("bench_*.py"))


def test_there_are_bench_scripts() -> None:
    assert len(SCRIPTS) >= 4, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bench_script_runs_in_tiny_mode(script: Path, redis_url: str) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRUEBOND_")},
        "TRUEBOND_BENCH_TINY": "1",
        "TRUEBOND_BENCH_REDIS_URL": redis_url,
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # Every script prints a result table with a same-run ratio (1.00x for its baseline).
    assert "x" in done.stdout and ("ratio" in done.stdout or "1.00x" in done.stdout), done.stdout[-2000:]
