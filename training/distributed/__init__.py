"""Retraining beyond one instance: LightGBM's own distributed mode (``lightgbm.dask``) on a Dask cluster.

``cluster`` decides when a run goes to Dask and connects to it; ``source`` reads the window's curated
parts on the workers, straight from Blob; ``run`` is the distributed ``prepare`` and ``fit``, handing the
pipeline's own ``export``, gate and ``publish`` the same typed values as the single-node path;
``submit`` is what the timer function calls: it hands the whole run to the cluster and returns.
"""
