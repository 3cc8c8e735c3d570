"""Retraining beyond one instance: LightGBM's own distributed mode (``lightgbm.dask``) on a Dask cluster.

``cluster`` decides when a run goes to Dask and connects to it; ``source`` reads the window's curated
parts on the workers, straight from Blob; ``workers`` is what runs there (sampling, derived columns,
scoring); ``prepared`` is what the Dask engine's ``prepare`` hands on. The engine itself
(``training.engines.dask``) hands the steps both engines share (``training.finish``: export, the gate,
publish) the same typed values as the single-node engine; ``training.retrain`` is what the timer calls:
with a scheduler address, it hands the whole run to the cluster and returns.
"""
