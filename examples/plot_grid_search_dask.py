"""
Grid search on a Dask cluster
=============================

Members of an ensemble and candidates of a grid search are independent
jobs run through joblib, so the same code runs on a Dask cluster with
``joblib.parallel_config(backend="dask")``. Here a local cluster of two
worker processes stands in for a real one; inner settings of the skorch
template are reached as ``estimator__...`` and scored by NLL.
"""

# %%
import joblib
import numpy as np
import pandas as pd
from dask.distributed import Client, LocalCluster
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from skspro import ESPROClassifier, default_estimator
from skspro.metrics import nll_scorer

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)[:800]
y = y[:800]
model = ESPROClassifier(
    default_estimator().set_params(max_epochs=30), n_members=2, n_vertices=1, vertex_epochs=3, random_state=0
)
grid = {"estimator__module__hidden_units": [(32,), (128,)], "reg": [1e-4, 1e-2]}
search = GridSearchCV(model, grid, scoring=nll_scorer, cv=2)

if __name__ == "__main__":
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster), joblib.parallel_config(backend="dask"):
            search.fit(X, y)
    table = pd.DataFrame(search.cv_results_)[["params", "mean_test_score", "mean_fit_time"]]
    print(table.to_string())
    print("best:", search.best_params_)
