"""The project's own files: the environment template, ignored secrets, no print, README, CI, Procfile."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from truebond.config import VARIABLES

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture(scope="module")
def git_repo() -> None:
    """Skip the git checks where there is no git or no repository (an unpacked archive)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if _git("rev-parse", "--show-toplevel").returncode != 0:
        pytest.skip(f"{ROOT} is not a git work tree")


def test_env_example_holds_exactly_the_variables_in_order_and_empty() -> None:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    assignments: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            # A comment may explain, but must not mention any other variable.
            others = set(re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", stripped)) - set(VARIABLES)
            assert not others, f"comment in .env.example names other variables: {sorted(others)}"
            continue
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", stripped)
        assert match, f"not a NAME= line in .env.example: {line!r}"
        assert match.group(2) == "", f"{match.group(1)} has a value in .env.example; the template holds no values"
        assignments.append(match.group(1))
    assert tuple(assignments) == VARIABLES
    assert len(VARIABLES) == 14


def test_git_tracks_no_env_file_but_the_template(git_repo: None) -> None:
    result = _git("ls-files", "-z")
    assert result.returncode == 0, result.stderr
    tracked = [p for p in result.stdout.split("\0") if p]
    env_files = [p for p in tracked if re.fullmatch(r"\.env(\..*)?", Path(p).name)]
    assert env_files in ([".env.example"], []), f"environment files tracked by git: {env_files}"


@pytest.mark.parametrize("name", [".env", ".env.local", ".env.production", "sub/.env"])
def test_git_ignores_env_files(git_repo: None, name: str) -> None:
    result = _git("check-ignore", "--no-index", "-q", name)
    assert result.returncode == 0, f"{name} is not ignored by .gitignore"


def test_git_does_not_ignore_the_template(git_repo: None) -> None:
    result = _git("check-ignore", "--no-index", "-q", ".env.example")
    assert result.returncode == 1, ".env.example must not be ignored"


def _print_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    ]


def test_no_print_in_the_package() -> None:
    found = {str(path.relative_to(ROOT)): lines for path in sorted((ROOT / "truebond").rglob("*.py")) if (lines := _print_calls(path))}
    assert not found, f"print() calls (use the logger, or say() for CLI output): {found}"


def test_readme_starts_with_the_setup_commands() -> None:
    head = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:40])
    assert "make dev" in head
    assert "make test" in head


def test_ci_script_runs_make_test() -> None:
    script = ROOT / ".ci" / "run"
    text = script.read_text(encoding="utf-8")
    commands = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert "set -euo pipefail" in commands
    assert any(re.match(r"(exec\s+)?make\s+test\b", line) for line in commands), text
    assert os.access(script, os.X_OK), ".ci/run must be executable"


def test_ci_script_is_tracked_executable(git_repo: None) -> None:
    result = _git("ls-files", "-s", "--", ".ci/run")
    if not result.stdout.strip():
        pytest.skip(".ci/run is not committed yet")
    assert result.stdout.split()[0] == "100755", ".ci/run must be committed with its executable bit"


def test_procfile() -> None:
    lines = [line for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines == ["web: truebond serve --port $PORT", "projector: truebond project"]
