"""Strawberry's schema with its per-request extension bookkeeping done once.

For every operation, every phase (operation, parsing, validation, execution) and every
extension, Strawberry's runner looks the hook up on the class, inspects whether it is a
generator, wraps it with ``contextlib.contextmanager`` (``functools.wraps`` included) and
enters it through an ``AsyncExitStack``; it also asks each extension whether it implements
``resolve``. None of that depends on the request: a schema runs the same extension classes
every time. Here the hooks of each phase are found once per tuple of extension classes and
driven directly: a generator hook is started with ``next`` and finished with ``next``.

The semantics are Strawberry's, which are contextlib's: hooks enter in order and leave in
reverse, and a hook's exception reaches the hooks entered before it (an exception passing
through a phase goes on even if a hook swallows it, as with Strawberry's managers). When an
exception is on its way (rare: most are results, not raises), the hooks are unwound through
a real ``AsyncExitStack`` with contextlib's own exit logic.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any

import strawberry
from graphql import MiddlewareManager
from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext
from strawberry.utils.await_maybe import await_maybe

# How a hook runs: a generator (entered and finished), or a function called on entry.
SYNC_GENERATOR, ASYNC_GENERATOR, SYNC_CALL, ASYNC_CALL = range(4)
PHASES: dict[str, type[ExtensionContextManagerBase]] = {
    OperationContextManager.HOOK_NAME: OperationContextManager,
    ParsingContextManager.HOOK_NAME: ParsingContextManager,
    ValidationContextManager.HOOK_NAME: ValidationContextManager,
    ExecutingContextManager.HOOK_NAME: ExecutingContextManager,
}

Hook = tuple[int, Callable[..., Any], int]  # (index of the extension, function, how)


def _kind(cls: type[SchemaExtension], name: str) -> tuple[Callable[..., Any], int] | None:
    function = getattr(cls, name)
    if function is getattr(SchemaExtension, name):
        return None
    if inspect.isgeneratorfunction(function):
        return function, SYNC_GENERATOR
    if inspect.isasyncgenfunction(function):
        return function, ASYNC_GENERATOR
    if inspect.iscoroutinefunction(function):
        return function, ASYNC_CALL
    if callable(function):
        return function, SYNC_CALL
    raise ValueError(f"Hook {name} on {cls} must be callable, received {function!r}")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a tuple of extension classes does in each phase."""

    hooks: dict[str, tuple[Hook, ...]]
    results: tuple[int, ...]  # the extensions that report something in ``extensions``
    resolving: tuple[int, ...]  # the extensions that wrap resolvers

    @classmethod
    def of(cls, classes: Sequence[type[SchemaExtension]]) -> _Plan:
        hooks: dict[str, tuple[Hook, ...]] = {}
        for name in PHASES:
            found = []
            for index, extension in enumerate(classes):
                kind = _kind(extension, name)
                if kind is not None:
                    found.append((index, *kind))
            hooks[name] = tuple(found)
        results = tuple(i for i, c in enumerate(classes)
                        if c.get_results is not SchemaExtension.get_results)
        resolving = tuple(i for i, c in enumerate(classes) if c._implements_resolve())
        return cls(hooks, results, resolving)


_PLANS: dict[tuple[type[SchemaExtension], ...], _Plan] = {}


def _plan_for(extensions: Sequence[SchemaExtension]) -> _Plan:
    key = tuple(map(type, extensions))
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _Plan.of(key)
    return plan


# --- leaving a started generator hook, exactly as contextlib's managers do ------------------


def _exit_sync(
    gen: Generator[Any, None, None],
    typ: type[BaseException] | None,
    value: BaseException | None,
    traceback: TracebackType | None,
) -> bool:
    """``contextlib._GeneratorContextManager.__exit__`` for a generator already entered."""
    if typ is None:
        try:
            next(gen)
        except StopIteration:
            return False
        try:
            raise RuntimeError("generator didn't stop")
        finally:
            gen.close()
    if value is None:
        value = typ()
    try:
        gen.throw(value)
    except StopIteration as exc:
        return exc is not value
    except RuntimeError as exc:
        if exc is value:
            exc.__traceback__ = traceback
            return False
        if isinstance(value, StopIteration) and exc.__cause__ is value:
            value.__traceback__ = traceback
            return False
        raise
    except BaseException as exc:
        if exc is not value:
            raise
        exc.__traceback__ = traceback
        return False
    try:
        raise RuntimeError("generator didn't stop after throw()")
    finally:
        gen.close()


async def _exit_async(
    gen: AsyncGenerator[Any, None],
    typ: type[BaseException] | None,
    value: BaseException | None,
    traceback: TracebackType | None,
) -> bool:
    """``contextlib._AsyncGeneratorContextManager.__aexit__`` for an entered generator."""
    if typ is None:
        try:
            await anext(gen)
        except StopAsyncIteration:
            return False
        try:
            raise RuntimeError("generator didn't stop")
        finally:
            await gen.aclose()
    if value is None:
        value = typ()
    try:
        await gen.athrow(value)
    except StopAsyncIteration as exc:
        return exc is not value
    except RuntimeError as exc:
        if exc is value:
            exc.__traceback__ = traceback
            return False
        if isinstance(value, StopIteration | StopAsyncIteration) and exc.__cause__ is value:
            value.__traceback__ = traceback
            return False
        raise
    except BaseException as exc:
        if exc is not value:
            raise
        exc.__traceback__ = traceback
        return False
    try:
        raise RuntimeError("generator didn't stop after athrow()")
    finally:
        await gen.aclose()


class _Phase:
    """The hooks of one phase for one request, as an (async) context manager."""

    __slots__ = ("_entered", "_extensions", "_hooks", "_name", "_stock")

    def __init__(
        self, name: str, hooks: tuple[Hook, ...], extensions: list[SchemaExtension]
    ) -> None:
        self._name = name
        self._hooks = hooks
        self._extensions = extensions
        self._entered: list[tuple[bool, Any]] = []  # (is async, started generator)
        self._stock: ExtensionContextManagerBase | None = None

    async def __aenter__(self) -> None:
        extensions, entered = self._extensions, self._entered
        for index, function, kind in self._hooks:
            extension = extensions[index]
            if kind == SYNC_GENERATOR:
                gen = function(extension)
                try:
                    next(gen)
                except StopIteration:
                    raise RuntimeError("generator didn't yield") from None
                entered.append((False, gen))
            elif kind == ASYNC_GENERATOR:
                agen = function(extension)
                try:
                    await anext(agen)
                except StopAsyncIteration:
                    raise RuntimeError("generator didn't yield") from None
                entered.append((True, agen))
            elif kind == SYNC_CALL:
                function(extension)
            else:
                await function(extension)

    async def __aexit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        entered = self._entered
        if typ is not None:
            # Strawberry's managers let the exception go on even when a hook swallowed it.
            await self._unwind(typ, value, traceback)
            return False
        while entered:
            is_async, gen = entered.pop()
            try:
                if is_async:
                    await _exit_async(gen, None, None, None)
                else:
                    _exit_sync(gen, None, None, None)
            except BaseException as exc:
                # A hook failed on the way out: the earlier ones see its exception.
                if await self._unwind(type(exc), exc, exc.__traceback__):
                    return False
                raise
        return False

    async def _unwind(
        self,
        typ: type[BaseException],
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        stack = contextlib.AsyncExitStack()
        for is_async, gen in self._entered:
            if is_async:
                stack.push_async_exit(partial(_exit_async, gen))
            else:
                stack.push(partial(_exit_sync, gen))
        self._entered = []
        return bool(await stack.__aexit__(typ, value, traceback))

    # Synchronous execution (``Schema.execute_sync``) keeps Strawberry's own managers.
    def __enter__(self) -> None:
        self._stock = PHASES[self._name](self._extensions)
        self._stock.__enter__()

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._stock is not None
        self._stock.__exit__(typ, value, traceback)


class _Nothing:
    """A phase no extension hooks into: entering and leaving it does nothing."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_: object) -> None:
        return None


_NOTHING = _Nothing()
_NO_MIDDLEWARE = MiddlewareManager()


class PlannedHooksRunner(SchemaExtensionsRunner):
    """The runner, its hooks looked up once per tuple of extension classes."""

    def __init__(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> None:
        super().__init__(execution_context=execution_context, extensions=extensions)
        self.plan = _plan_for(self.extensions)

    def _phase(self, name: str) -> Any:
        hooks = self.plan.hooks[name]
        return _Phase(name, hooks, self.extensions) if hooks else _NOTHING

    def operation(self) -> Any:
        return self._phase(OperationContextManager.HOOK_NAME)

    def parsing(self) -> Any:
        return self._phase(ParsingContextManager.HOOK_NAME)

    def validation(self) -> Any:
        return self._phase(ValidationContextManager.HOOK_NAME)

    def executing(self) -> Any:
        return self._phase(ExecutingContextManager.HOOK_NAME)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for index in self.plan.results:
            data.update(await await_maybe(self.extensions[index].get_results()))
        data.update(ctx.extensions_results)
        return data


class Schema(strawberry.Schema):
    """``strawberry.Schema`` with the extension runner above."""

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return PlannedHooksRunner(execution_context, extensions)

    def _get_middleware_manager(self, extensions: list[SchemaExtension]) -> MiddlewareManager:
        resolving = _plan_for(extensions).resolving
        # A manager without middleware keeps no per-request state: one serves every request.
        if not resolving:
            return _NO_MIDDLEWARE
        return MiddlewareManager(*(extensions[i] for i in resolving))
