"""Model families by name. Every module in this package is a family: it subclasses
`base.Family` and registers itself with `@register`, so a new family is one new file and
nothing else changes. Family modules import their heavy libraries inside methods, so finding
the families stays cheap."""

from __future__ import annotations

import importlib
import pkgutil

from steps.lib.families.base import Family

_REGISTRY: dict[str, type[Family]] = {}


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: make `cls` available as `get_family(cls.name)`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    known = _REGISTRY.get(cls.name)
    if known is not None and known.__module__ != cls.__module__:
        raise ValueError(f"two model families are called {cls.name!r}: {known.__module__}, {cls.__module__}")
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base" and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


def family_names() -> tuple[str, ...]:
    """Every registered family, in a stable order."""
    _discover()
    return tuple(sorted(_REGISTRY))


def get_family(name: str, **options) -> Family:
    """The family called `name`, built with `options` (e.g. thread_count)."""
    if name not in _REGISTRY:
        _discover()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**options)
