"""The package type-checks: ``mypy`` (configured in pyproject.toml) reports no errors."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_clean():
    """``python -m mypy`` on src/matdiff exits 0; its report is shown when it does not (mypy
    is in the test extra: without it, this fails)."""
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
