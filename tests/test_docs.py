"""The documentation site (guides + API reference from the docstrings) builds with warnings as errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strictly(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    api = (tmp_path / "api" / "index.html").read_text()
    for name in ("GenerativeModel", "masked_sum", "particle_and_global_noise", "check_condition", "FeedForward",
                 "ModelSpec", "quick_recipe", "toy_jets", "pcgen_register_models"):
        assert name in api, f"{name} is missing from the API reference"
