"""The project's own files: the environment template, ignored secrets, no print, README, CI, Procfile."""

from __future__ import annotations

import ast
import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from truebond.config import VARIABLES

ROOT = Path(__file__).resolve().parents[2]  # tests/platform/<this file> -> the project root


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


def _readme_sections() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    parts = re.split(r"^## +(.+)$", text, flags=re.MULTILINE)
    sections = {"": parts[0]}
    sections.update({title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)})
    return sections


def _table_first_cells(markdown: str) -> list[str]:
    rows = [line for line in markdown.splitlines() if line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line)]
    return [row.split("|")[1].strip() for row in rows[1:]]  # without the header row


def test_readme_opens_with_the_two_commands() -> None:
    intro = _readme_sections()[""]
    block = re.search(r"```\w*\n(.*?)```", intro, flags=re.DOTALL)
    assert block, "the README must open with a code block of the commands"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make dev", "make test"]


def test_readme_describes_the_service_its_architecture_and_processes() -> None:
    sections = _readme_sections()
    assert any(title.lower().startswith("what it is") for title in sections), list(sections)
    architecture = next(body for title, body in sections.items() if title.lower().startswith("architecture"))
    diagram = re.search(r"```\n(.*?)```", architecture, flags=re.DOTALL)
    assert diagram and diagram.group(1).count("\n") >= 8, "the architecture section needs a diagram"
    processes = next(body for title, body in sections.items() if "procfile" in title.lower())
    procfile = [line for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines() if line.strip()]
    for line in procfile:
        assert line in processes, line


def test_readme_configuration_table_lists_exactly_the_variables() -> None:
    config = next(body for title, body in _readme_sections().items() if title.lower().startswith("configuration"))
    assert _table_first_cells(config) == [f"`{name}`" for name in VARIABLES]


def test_readme_names_every_dependency_and_why() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    required = [re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0].lower() for line in cfg["options"]["install_requires"].splitlines()]
    required = [name for name in required if name]
    deps = next(body for title, body in _readme_sections().items() if title.lower().startswith("dependencies"))
    rows = [line.split("|")[1:3] for line in deps.splitlines() if line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line)][1:]
    explained = {name.strip().lower(): why.strip() for names, why in rows for name in names.split(",")}
    assert len(required) >= 15
    missing = [name for name in required if not explained.get(name)]
    assert not missing, f"setup.cfg dependencies without a README line saying why: {missing}"


def test_ci_workflow_runs_make_test_with_mongodb_and_redis_services() -> None:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
    [job] = workflow["jobs"].values()
    images = [str(service["image"]).split(":")[0] for service in job["services"].values()]
    assert sorted(images) == ["mongo", "redis"]
    steps = job["steps"]
    env = {**job.get("env", {}), **{k: v for step in steps for k, v in step.get("env", {}).items()}}
    assert str(env.get("TRUEBOND_TEST_MONGO_URL", "")).startswith("mongodb://")
    assert any(str(step.get("with", {}).get("python-version")) == "3.11" for step in steps)
    assert any(re.search(r"(^|\s)make test\b", str(step.get("run", ""))) for step in steps)


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
    assert lines == ["web: truebond serve --port $PORT", "projector: truebond project", "billing: truebond bill"]
