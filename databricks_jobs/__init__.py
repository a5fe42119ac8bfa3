"""tabtune as a Databricks multi-task job (docs/databricks.md).

job.py builds the job definition (pure), task.py is what each task does (MLflow runs and task
values), task_notebook.py is the notebook every task runs, submit.py sends the job with
databricks-sdk, bundle.py offers the same job as a Databricks Asset Bundle resource. Named
`databricks_jobs`, not `databricks`, so it never shadows the `databricks` namespace package
that databricks-sdk installs."""
