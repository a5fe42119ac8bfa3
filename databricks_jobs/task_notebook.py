# Databricks notebook source
# The notebook every task of the tabtune job runs (databricks_jobs/job.py). A notebook, not a
# Python script task, because Databricks documents dbutils.jobs.taskValues.set as notebook-only.
# It reads the task's parameters from widgets and hands them to databricks_jobs.task, which runs
# the step and publishes its run ID; downstream tasks get it through {{tasks.<step>.values.*}}.
# A tuning worker (a for_each iteration) also gets dbutils.secrets, for its Optuna storage URL.
import os
import sys
from pathlib import Path

# The repository root (where MLproject is) makes `steps` and `databricks_jobs` importable.
_here = Path(os.getcwd()).resolve()
sys.path.insert(0, str(next(p for p in (_here, *_here.parents) if (p / "MLproject").is_file())))

import mlflow  # noqa: E402

from databricks_jobs import job, task  # noqa: E402

# On ML runtimes Databricks Autologging would log every fit of the tuning loops into the step runs.
mlflow.autolog(disable=True)

step = dbutils.widgets.get(job.STEP_KEY)  # noqa: F821 - dbutils is a notebook global
role = dbutils.widgets.get(job.ROLE_KEY)  # noqa: F821
params = {name: dbutils.widgets.get(name) for name in job.parameter_names(step, role)}  # noqa: F821
# dbutils.secrets: a tuning worker reads its Optuna storage URL from a secret, never from a parameter.
task.run_task(step, params, dbutils.jobs.taskValues, secrets=dbutils.secrets)  # noqa: F821
