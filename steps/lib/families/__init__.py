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


def get_family(name: str, *, thread_count: int | None = None, **settings) -> Family:
    """The family called `name`, fitting on `thread_count` threads; of `settings` (every
    family's refit switches, as the refit step got them) it takes those it declares."""
    if name not in _REGISTRY:
        _discover()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    family = _REGISTRY[name]
    own = {option.name: settings[option.name] for option in family.refit_options if option.name in settings}
    return family(thread_count=thread_count, **own)


def refit_options() -> list:
    """Every family's own refit switches, for the refit step's command line."""
    return [option for name in family_names() for option in _REGISTRY[name].refit_options]
