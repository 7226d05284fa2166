"""The schema's extension runner (schema/runner.py) behaves as Strawberry's own: the same
hooks in the same order see the same exceptions, and the results are the same."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from schema.runner import Schema


class Boom(Exception):
    pass


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"

    @strawberry.field
    def broken(self) -> str:
        raise Boom("resolver")


def extensions(log: list[str], faults: dict[str, str]) -> list[Any]:
    """Four extensions of every hook style; ``faults`` says which hook does what wrong."""

    def fault(where: str) -> None:
        what = faults.get(where)
        if what == "raise":
            raise Boom(where)

    class SyncGen(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append("sync op enter")
            fault("sync op enter")
            try:
                yield
            except Boom as error:
                log.append(f"sync op saw {error}")
                if faults.get("sync op") == "suppress":
                    return
                raise
            log.append("sync op exit")
            fault("sync op exit")

        def on_parse(self) -> Iterator[None]:
            log.append("sync parse")
            fault("sync parse")
            yield
            if faults.get("sync parse exit") == "linger":
                yield  # a generator that does not stop

        def on_execute(self) -> Iterator[None]:
            log.append("sync execute enter")
            yield
            log.append("sync execute exit")
            fault("sync execute exit")

    class AsyncGen(SchemaExtension):
        async def on_operation(self) -> AsyncIterator[None]:
            log.append("async op enter")
            try:
                yield
            finally:
                log.append("async op finally")
            fault("async op exit")

        async def on_validate(self) -> AsyncIterator[None]:
            log.append("async validate")
            yield

    class Calls(SchemaExtension):
        def on_validate(self) -> None:  # type: ignore[override]
            log.append("call validate")
            fault("call validate")

        async def on_execute(self) -> None:  # type: ignore[override]
            log.append("async call execute")

    class Results(SchemaExtension):
        def get_results(self) -> dict[str, Any]:
            return {"seen": len(log)}

    return [SyncGen, AsyncGen, Calls, Results]


async def _run(schema_class: type[strawberry.Schema], query: str,
               faults: dict[str, str]) -> tuple[list[str], str]:
    log: list[str] = []
    schema = schema_class(query=Query, extensions=extensions(log, faults))
    try:
        result = await schema.execute(query)
    except Exception as error:  # compared, whatever it is
        outcome = f"raised {type(error).__name__}: {error}"
    else:
        errors = [str(e) for e in result.errors or []]
        outcome = f"data={result.data} errors={errors} extensions={result.extensions}"
    return log, outcome


SCENARIOS = [
    ("{ hello }", {}),
    ("{ broken }", {}),
    ("{ hello ", {}),  # a syntax error
    ("{ nope }", {}),  # a validation error
    ("{ hello }", {"sync op enter": "raise"}),
    ("{ hello }", {"sync op exit": "raise"}),
    ("{ hello }", {"async op exit": "raise"}),
    ("{ hello }", {"sync op exit": "raise", "sync op": "suppress"}),
    ("{ hello }", {"sync parse": "raise"}),
    ("{ hello }", {"sync parse": "raise", "sync op": "suppress"}),
    ("{ hello }", {"sync parse exit": "linger"}),
    ("{ hello }", {"call validate": "raise"}),
    ("{ hello }", {"sync execute exit": "raise"}),
]


@pytest.mark.parametrize(("query", "faults"), SCENARIOS)
async def test_the_runner_behaves_as_strawberrys(query: str, faults: dict[str, str]) -> None:
    # given the same extensions on a stock schema and on ours
    stock_log, stock = await _run(strawberry.Schema, query, faults)
    # when both run the same operation, then the hooks and the outcome are the same
    ours_log, ours = await _run(Schema, query, faults)
    assert ours_log == stock_log
    assert ours == stock


async def test_hooks_are_looked_up_once_per_set_of_extension_classes() -> None:
    log: list[str] = []
    schema = Schema(query=Query, extensions=extensions(log, {}))
    first = schema.create_extensions_runner(None, schema.get_extensions())  # type: ignore[arg-type]
    second = schema.create_extensions_runner(None, schema.get_extensions())  # type: ignore[arg-type]
    assert first.plan is second.plan  # type: ignore[attr-defined]
    # and the phases that no extension hooks cost nothing
    assert (await schema.execute("{ hello }")).data == {"hello": "world"}
