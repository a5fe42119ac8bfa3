"""Searching a family's parameters: the LASSO grid, Optuna studies, their storage, samplers, budget and workers."""
