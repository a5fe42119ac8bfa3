"""tabtune's library: plain functions over DataFrames and models; only `tracking` talks to MLflow (and
model/raw_rows_model.py, the served model's own code, which MLflow loads)."""
