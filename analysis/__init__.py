"""Analysis of InfoGAN sweeps: Parquet tables from MLflow/Tune records, comparisons, plots, reports.

Reading the tables (``analysis.schema.read_trials`` / ``read_curves``) needs only pandas and
pyarrow; ``analysis.collect`` imports MLflow lazily, and nothing here imports Ray.
"""
