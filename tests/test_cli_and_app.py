"""The CLI, the exported SDL, the operational routes, and a real server end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from graphql import build_schema as parse_sdl

from api.cli import main
from schema import build_schema
from tests.queries import LOGIN
from tests.server import serve

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schema_is_current():
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == build_schema().as_str() + "\n", (
        "schema.graphql is stale: run `make export-schema`"
    )


def test_every_type_field_and_argument_is_described():
    sdl = parse_sdl((ROOT / "schema.graphql").read_text())
    missing = []
    for name, type_ in sdl.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not type_.description and name not in {"Query", "Mutation", "Subscription"}:
            missing.append(name)
        for field_name, field in getattr(type_, "fields", {}).items():
            if not field.description:
                missing.append(f"{name}.{field_name}")
            for arg_name, arg in getattr(field, "args", {}).items():
                if not arg.description:
                    missing.append(f"{name}.{field_name}({arg_name})")
        for value_name, value in getattr(type_, "values", {}).items():
            del value_name, value  # enum values are self-describing names
    assert missing == []


def test_export_schema_command(capsys):
    main(["export-schema"])
    assert capsys.readouterr().out == (ROOT / "schema.graphql").read_text()


def test_invalid_settings_name_the_setting(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "migrate"],
        env={"PATH": "/usr/bin:/bin", "STOCKROOM_ENV": "prod", "STOCKROOM_JWT_SECRET": "short"},
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )
    assert result.returncode != 0
    assert "STOCKROOM_JWT_SECRET" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "migrate"],
        env={"PATH": "/usr/bin:/bin", "STOCKROOM_DATABASE_URL": "mysql://x"},
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )
    assert "STOCKROOM_DATABASE_URL" in result.stderr


def test_migrate_seed_and_create_user_commands(tmp_path, backend, templates):
    url = templates.template(backend, f"cli_{backend}")
    env = {"PATH": "/usr/bin:/bin", "STOCKROOM_DATABASE_URL": url}

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, input=stdin,
                              capture_output=True, text=True, cwd=ROOT, check=False)

    assert cli("migrate").returncode == 0
    seeded = cli("seed", "--demo", "--items", "20", "--if-empty")
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 20 items" in seeded.stdout
    assert "already has items" in cli("seed", "--if-empty").stdout
    made = cli("create-user", "--email", "ops@example.com", "--role", "manager",
               "--password-stdin", stdin="correct horse battery\n")
    assert made.returncode == 0, made.stderr
    assert "created ops@example.com (MANAGER)" in made.stdout
    again = cli("create-user", "--email", "ops@example.com", "--role", "manager",
                "--password-stdin", stdin="correct horse battery\n")
    assert again.returncode != 0
    assert "exists" in again.stderr


async def test_health_ready_and_sdl_routes(reader_client):
    http = reader_client.http
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    sdl = await http.get("/schema.graphql")
    assert sdl.text == build_schema().as_str()


@pytest.mark.e2e
async def test_serve_end_to_end(seeded_db, tmp_path):
    with serve(seeded_db.url, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            login = await http.post("/graphql", json={"query": LOGIN, "variables": {
                "e": "viewer@example.com", "p": "viewer"}})
            token = login.json()["data"]["login"]["accessToken"]
            response = await http.post(
                "/graphql",
                json={"query": "{ items(first: 2) { totalCount edges { node { sku } } } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/json")
            assert response.json()["data"]["items"]["totalCount"] == 250
        assert "GraphiQL" in server.output()
