"""Paths to the verification fixtures (tests/fixtures/{faces,mrz,vehicles}, see their READMEs)."""

import csv
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FACES = FIXTURES / "faces"
MRZ = FIXTURES / "mrz"
VEHICLES = FIXTURES / "vehicles"
ROOT = FIXTURES.parent.parent


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def run_command(*args: str) -> subprocess.CompletedProcess:
    """``manage.py`` in a child process: the exit code and the exact output a user sees."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "true", "PYTHONWARNINGS": "ignore"},
    )
