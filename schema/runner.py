"""Strawberry's schema with its per-request extension bookkeeping done once per class.

For every operation, every phase (operation, parsing, validation, execution) and every
extension, Strawberry's runner looks the hook up on the class, inspects whether it is a
generator, and wraps it with ``contextlib.contextmanager`` (``functools.wraps`` included);
it also asks each extension whether it implements ``resolve`` to build a middleware
manager. None of that depends on the request. Here it is worked out once per extension
class and reused: a phase no extension hooks into costs nothing, and one that has hooks
runs them through the same ``contextlib`` managers and exit stack as before, so hooks see
exactly the same calls, exceptions and order.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from functools import partial
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
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

# (extension class, hook name) -> (context manager factory taking the extension, is async);
# None when the class leaves the hook to SchemaExtension.
_Factory = tuple[Callable[[SchemaExtension], Any], bool] | None
_FACTORIES: dict[tuple[type[SchemaExtension], str], _Factory] = {}
_RESOLVES: dict[type[SchemaExtension], bool] = {}
_NO_MIDDLEWARE = MiddlewareManager()


def _factory(cls: type[SchemaExtension], name: str) -> _Factory:
    key = (cls, name)
    if key in _FACTORIES:
        return _FACTORIES[key]
    hook = getattr(cls, name)
    found: _Factory = None
    if hook is not getattr(SchemaExtension, name):
        if inspect.isgeneratorfunction(hook):
            found = (contextlib.contextmanager(hook), False)
        elif inspect.isasyncgenfunction(hook):
            found = (contextlib.asynccontextmanager(hook), True)
        elif inspect.iscoroutinefunction(hook):

            @contextlib.asynccontextmanager
            async def awaited(extension: SchemaExtension) -> Any:
                await hook(extension)
                yield

            found = (awaited, True)
        elif callable(hook):

            @contextlib.contextmanager
            def called(extension: SchemaExtension) -> Iterator[None]:
                hook(extension)
                yield

            found = (called, False)
        else:
            raise ValueError(f"Hook {name} on {cls} must be callable, received {hook!r}")
    _FACTORIES[key] = found
    return found


class _Phase(ExtensionContextManagerBase):
    """One phase's hooks, found through the per-class cache instead of per request."""

    __slots__ = ()

    def __init__(self, extensions: list[SchemaExtension]) -> None:
        self.hooks = []
        for extension in extensions:
            found = _factory(type(extension), self.HOOK_NAME)
            if found is not None:
                factory, is_async = found
                self.hooks.append(WrappedHook(extension, partial(factory, extension), is_async))


class _Operation(_Phase):
    HOOK_NAME = OperationContextManager.HOOK_NAME


class _Parsing(_Phase):
    HOOK_NAME = ParsingContextManager.HOOK_NAME


class _Validation(_Phase):
    HOOK_NAME = ValidationContextManager.HOOK_NAME


class _Executing(_Phase):
    HOOK_NAME = ExecutingContextManager.HOOK_NAME


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


def _phase(kind: type[_Phase], extensions: list[SchemaExtension]) -> Any:
    if not any(_factory(type(e), kind.HOOK_NAME) for e in extensions):
        return _NOTHING
    return kind(extensions)


class CachedHooksRunner(SchemaExtensionsRunner):
    def operation(self) -> Any:
        return _phase(_Operation, self.extensions)

    def parsing(self) -> Any:
        return _phase(_Parsing, self.extensions)

    def validation(self) -> Any:
        return _phase(_Validation, self.extensions)

    def executing(self) -> Any:
        return _phase(_Executing, self.extensions)


class Schema(strawberry.Schema):
    """``strawberry.Schema`` with the extension runner above."""

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return CachedHooksRunner(execution_context=execution_context, extensions=extensions)

    def _get_middleware_manager(self, extensions: list[SchemaExtension]) -> MiddlewareManager:
        resolving = []
        for extension in extensions:
            cls = type(extension)
            implements = _RESOLVES.get(cls)
            if implements is None:
                implements = _RESOLVES[cls] = cls._implements_resolve()
            if implements:
                resolving.append(extension)
        # A manager without middleware keeps no per-request state: one serves every request.
        return MiddlewareManager(*resolving) if resolving else _NO_MIDDLEWARE
