"""Model families by name; a new family is one module plus one line here."""

from __future__ import annotations


def get_family(name: str, **options):
    """The family called `name`; imports only that family's libraries."""
    if name == "lasso":
        from steps.lib.families.lasso import LassoFamily

        return LassoFamily()
    if name == "catboost":
        from steps.lib.families.catboost import CatBoostFamily

        return CatBoostFamily(**options)
    raise KeyError(f"unknown model family {name!r}; known: {', '.join(FAMILY_NAMES)}")


FAMILY_NAMES = ("lasso", "catboost")
