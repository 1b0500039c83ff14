"""Progress bars and the members' verbosity (skspro._progress), on their own."""

import pickle

import numpy as np
import pytest
import torch
from joblib import Parallel, delayed, parallel_config
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import cross_validate
from skorch import NeuralNetClassifier

from skspro import default_estimator
from skspro._progress import (
    EpochProgress,
    StageProgress,
    epoch_progress_callbacks,
    in_parallel_worker,
    member_verbose,
    progress_bar,
    show_progress,
)
from skspro.modules import MLP


def test_progress_bar_only_when_asked(capsys):
    items = [1, 2, 3]
    assert progress_bar(items, verbose=0, desc="members") is items
    assert progress_bar(items, verbose=1, level=2, desc="epochs") is items
    assert list(progress_bar(iter(items), verbose=1, total=3, desc="members")) == items
    err = capsys.readouterr().err
    assert "members" in err and "3/3" in err


@pytest.mark.parametrize(
    ("n_jobs", "backend", "expected"),
    [(1, None, True), (2, "threading", False), (2, "loky", False)],
)
def test_no_bars_inside_joblib_workers(n_jobs, backend, expected):
    assert show_progress(1) and not in_parallel_worker()
    with parallel_config(backend=backend) if backend else parallel_config():
        inside = Parallel(n_jobs=n_jobs)(delayed(show_progress)(1) for _ in range(2))
    assert inside == [expected, expected]


class _RecordsVerbosity(ClassifierMixin, BaseEstimator):
    """Fits nothing; records what a member cloned inside this fit would print."""

    def __init__(self, verbose=1, c=0):
        self.verbose = verbose
        self.c = c

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.seen_ = (show_progress(self.verbose), member_verbose(self.verbose, 1))
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_parallel_model_selection_is_quiet_even_when_the_estimator_is_verbose():
    X, y = np.zeros((8, 1)), np.array([0, 1] * 4)
    # cross_validate dispatches fits as GridSearchCV does; return_estimator lets us see inside them
    fitted = cross_validate(_RecordsVerbosity(verbose=3), X, y, cv=2, n_jobs=2, return_estimator=True)
    assert [est.seen_ for est in fitted["estimator"]] == [(False, 0), (False, 0)]
    sequential = cross_validate(_RecordsVerbosity(verbose=3), X, y, cv=2, return_estimator=True)
    assert [est.seen_ for est in sequential["estimator"]] == [(True, 1), (True, 1)]  # what was asked for


def test_member_verbose_follows_the_ensemble_unless_the_template_sets_it():
    plain = NeuralNetClassifier(MLP)  # skorch's default verbose=1, as in the README's template
    assert plain.verbose == 1
    assert [member_verbose(v, plain.verbose) for v in (0, 1, 2, 3, 4)] == [0, 0, 0, 1, 1]
    quiet = default_estimator()  # sets verbose=0 on purpose: kept
    assert [member_verbose(v, quiet.verbose) for v in (0, 3)] == [0, 0]
    assert [member_verbose(v, 2) for v in (0, 3)] == [2, 2]


def test_epoch_bar_of_a_skorch_fit(capsys):
    assert epoch_progress_callbacks(1, "member 1/2") == []
    ((name, callback),) = epoch_progress_callbacks(2, "member 1/2")
    assert name == "skspro_epoch_progress" and isinstance(callback, EpochProgress)
    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    net = NeuralNetClassifier(
        MLP,
        module__input_dim=4,
        module__n_classes=2,
        max_epochs=3,
        train_split=None,
        verbose=0,
        optimizer=torch.optim.Adam,
        callbacks=[(name, EpochProgress("member 1/2", leave=True))],
    ).fit(X, y)
    err = capsys.readouterr().err
    assert "member 1/2" in err and "3/3" in err and "train_loss" in err
    assert pickle.loads(pickle.dumps(net)).predict(X).shape == (40,)


def test_stage_progress(capsys):
    with StageProgress(3, verbose=1, desc="skspro report") as progress:
        for name in ("training", "tables", "figures"):
            progress.stage(name)
    assert progress.done == 3
    err = capsys.readouterr().err
    assert "skspro report" in err and "3/3" in err
    with pytest.raises(RuntimeError), StageProgress(2, verbose=0, desc="x") as failing:
        failing.stage("training")
        raise RuntimeError
    assert failing.done == 0  # a failed stage does not count as done
    assert capsys.readouterr().err == ""


# --------------------------------------------------- wired into the estimators
def _readme_template():
    """The README's template: skorch's default verbose (1), which would print epoch tables."""
    import torch
    from skorch import NeuralNetClassifier

    from skspro.modules import MLP

    return NeuralNetClassifier(
        MLP,
        module__input_dim=13,
        module__n_classes=3,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=2,
        train_split=None,
    )


def test_a_grid_search_over_the_readme_template_prints_nothing(capfd):
    import numpy as np
    from sklearn.datasets import load_wine
    from sklearn.model_selection import GridSearchCV

    from skspro import ESPROClassifier

    X, y = load_wine(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    model = ESPROClassifier(_readme_template(), n_members=2, n_vertices=1, vertex_epochs=1, n_samples=2)
    GridSearchCV(model, {"estimator__lr": [1e-2, 3e-2]}, cv=2).fit(X, y)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_verbose_draws_bars_over_members_vertices_and_epochs(capfd):
    import numpy as np
    from sklearn.datasets import load_wine

    from skspro import ESPROClassifier

    X, y = load_wine(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    ESPROClassifier(
        _readme_template(), n_members=3, n_vertices=1, vertex_epochs=1, n_samples=2, verbose=2
    ).fit(X, y)
    out, err = capfd.readouterr()
    assert "ESPROClassifier members" in err and "3/3" in err
    assert "vertex 1" in err  # the epochs bar of a vertex fit
    assert "epoch" not in out  # skorch's tables only from verbose=3
