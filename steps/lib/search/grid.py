"""Parsing the LASSO grid from its MLproject string."""

from __future__ import annotations

from steps.lib.errors import InputError


def parse_alphas(text: str) -> list[float]:
    """Alphas from a comma list ("1,0.3,0.1"), each positive, no duplicates, order kept."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise InputError("alphas", "expected a comma-separated list of positive numbers, got nothing")
    alphas = []
    for part in parts:
        try:
            alpha = float(part)
        except ValueError:
            raise InputError("alphas", f"{part!r} is not a number (expected e.g. 1,0.1,0.01)") from None
        if not alpha > 0 or alpha == float("inf"):
            raise InputError("alphas", f"{part!r} must be a positive finite number")
        alphas.append(alpha)
    if len(set(alphas)) != len(alphas):
        raise InputError("alphas", f"duplicate values in {text!r}")
    return alphas
