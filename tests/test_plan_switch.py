"""STOCKROOM_PLANNER switches planned reads on (the default) and off."""

from __future__ import annotations

import pytest

from api.settings import Settings
from tests.conftest import Database, _client_for, make_settings
from tests.queries import W1


@pytest.mark.parametrize("value", ["off", "false", "0"])
def test_the_setting_reads_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STOCKROOM_PLANNER", value)
    assert Settings(_env_file=None).planner is False


def test_planned_reads_are_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STOCKROOM_PLANNER", raising=False)
    assert Settings(_env_file=None).planner is True


@pytest.mark.parametrize("planner", [True, False])
async def test_switched_off_nothing_is_planned(shared_seeded_db: Database, planner: bool) -> None:
    # given an app with the planner on or off, when W1 runs
    async for client in _client_for(make_settings(shared_seeded_db.url, planner=planner)):
        await client.login_as("viewer")
        data = await client.data(W1, {"first": 5})
        assert len(data["items"]["edges"]) == 5
        # then only the app with the planner on counts a planned operation
        metrics = client.app.state.stockroom.metrics
        assert metrics.planner_count("planned") == (1.0 if planner else 0.0)
