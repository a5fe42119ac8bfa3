"""tabtune's library: plain functions over DataFrames and models; only `tracking` talks to MLflow."""
