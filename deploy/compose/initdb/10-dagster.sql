-- Run once by the timescaledb container on its first start (an empty data volume), as the qtis
-- role: the database Dagster keeps its runs, event logs and schedules in (deploy/dagster/dagster.yaml).
-- MLflow's and Optuna's databases (QTIS_MLFLOW_DATABASE, QTIS_TUNE_DATABASE) QTIS creates itself.
create database dagster;
