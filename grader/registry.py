"""The check registry: tag a function with `@check("name")`, validate it against a spec at load.

This is the pluggy/pytest way: the decorator only records the function (and its name); the
spec loader asks `get(name)` and validates the spec's parameters against the function's
keyword-only signature, naming the file and key that are wrong. The grader's own checks live
in `grader.checks`; a course adds checks without editing the package by installing a package
that declares an entry point in the group `grader.checks` (see README, "Adding a check").

This module imports nothing of the grader, so the spec loader (an early stage) can use it
without importing the checks (a later one); the checks are loaded by name when first asked for.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

__all__ = ["ENTRY_POINT_GROUP", "CheckFunction", "check", "get", "names", "validate_params"]

ENTRY_POINT_GROUP = "grader.checks"
BUILTIN = "grader.checks"

CheckFunction = Callable[..., Any]

_REGISTRY: dict[str, CheckFunction] = {}
_loaded = False


class RegistryError(Exception):
    """A check cannot be registered: a duplicate name, or a signature the spec cannot fill."""


def check(
    name: str, *, needs_task: bool = False, structural: bool = False
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check under `name` (what a spec writes as `check = "name"`).

    The function takes the evidence first, then keyword-only parameters (their defaults are
    the spec's defaults), and returns a `Verdict`.

    Args:
        name: the check's name in specs.
        needs_task: the check needs the spec's `[task]` table. Defaults to `False`.
        structural: the check judges how the network is built (shapes, wiring, the loss
            function), which a network passes whether or not it was trained; a spec with a
            `[task]` keeps these at or below `untrained_max` of its points. Defaults to `False`.
    """

    def tag(fn: CheckFunction) -> CheckFunction:
        params = list(inspect.signature(fn).parameters.values())
        if not params or params[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise RegistryError(f"check {name!r}: the first parameter must be the evidence")
        if any(p.kind is not inspect.Parameter.KEYWORD_ONLY for p in params[1:]):
            raise RegistryError(f"check {name!r}: parameters after the evidence are keyword-only")
        known = _REGISTRY.get(name)
        if known is not None and _qualname(known) != _qualname(fn):
            raise RegistryError(
                f"check {name!r} is registered twice: {_qualname(known)} and {_qualname(fn)}"
            )
        fn.check_name = name  # type: ignore[attr-defined]
        fn.needs_task = needs_task  # type: ignore[attr-defined]
        fn.structural = structural  # type: ignore[attr-defined]
        _REGISTRY[name] = fn
        return fn

    return tag


def _qualname(fn: CheckFunction) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _load() -> None:
    """Import the grader's own checks, then every installed plugin of the entry-point group."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()  # importing the plugin module registers its checks


def get(name: str) -> CheckFunction | None:
    """The check registered as `name`, or None."""
    _load()
    return _REGISTRY.get(name)


def names() -> list[str]:
    """Every registered check name, sorted."""
    _load()
    return sorted(_REGISTRY)


def validate_params(fn: CheckFunction, params: dict[str, Any]) -> list[str]:
    """What is wrong with `params` for check `fn` (unknown or missing parameters): a list of
    messages, empty when they fit."""
    sig = inspect.signature(fn)
    accepted = {
        name: p for name, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    problems = [
        f"unknown parameter {key!r}; accepted: {sorted(accepted)}"
        for key in params
        if key not in accepted
    ]
    problems += [
        f"missing parameter {name!r}"
        for name, p in accepted.items()
        if p.default is inspect.Parameter.empty and name not in params
    ]
    return problems


def parameters(fn: CheckFunction, given: dict[str, Any]) -> dict[str, Any]:
    """A check's parameters as it runs with them: the spec's, over the function's defaults."""
    out = {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }
    out.update(given)
    return out
