"""A production install of Ticket Manager carries no emulator code and does not pull in trustme."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
TEST_ONLY = {"trustme", "ticket-manager-sandbox"}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def runtime_closure(requirements: list[str]) -> set[str]:
    """Every distribution ``requirements`` pull in (extras left out), read from what the
    development environment has installed at the pinned versions."""
    seen: set[str] = set()
    todo = [
        r for r in requirements if not Requirement(r).marker or Requirement(r).marker.evaluate()
    ]
    while todo:
        name = _name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(line)
    return seen


def test_pip_install_of_the_product_brings_no_emulator_and_no_trustme(tmp_path):
    # `pip install .` in a fresh virtual environment (dependencies read from the pins, not
    # downloaded) installs no emulator code, and the
    # product's dependencies, followed all the way down, never include trustme.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    before = {p for p in Path(site).rglob("*") if p.is_file()}
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    added = {p for p in Path(site).rglob("*") if p.is_file()} - before
    files = [p.relative_to(site).as_posix() for p in added]
    assert any(f.startswith("ticket_manager/") for f in files)
    assert not [f for f in files if "sandbox" in f or "trustme" in f]

    [dist_info] = Path(site).glob("ticket_manager-*.dist-info")
    declared = [
        line.split(":", 1)[1].strip()
        for line in (dist_info / "METADATA").read_text().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    closure = runtime_closure(declared)
    assert "flask" in closure and "msal" in closure  # the walk did follow the dependencies
    assert not closure & TEST_ONLY
