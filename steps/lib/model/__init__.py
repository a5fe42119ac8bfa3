"""Fitting and scoring one model, the served model's code, its fingerprint, plots and the champion gate."""
