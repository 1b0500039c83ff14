"""Docstring fragments shared by several public objects, in one place.

A docstring names a fragment as ``{name}`` on a line of its own (indented as
a parameter entry); :func:`fill_doc` replaces it. Fragments are written with
the four-space indentation of a numpydoc parameter list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["fill_doc", "FRAGMENTS"]

T = TypeVar("T", bound=Callable)

FRAGMENTS = {
    "template": """estimator : skorch.NeuralNetClassifier, default=None
        Template cloned for every member (any module, optimizer, callbacks).
        ``None`` uses :func:`skspro.default_estimator`, an MLP for tabular
        data whose input and output sizes are set at fit.""",
    "device": """device : {"cpu", "cuda", "cuda:N", "auto"} or None, default=None
        Where members train and predict. ``None`` keeps the template's own
        ``device``; ``"auto"`` picks a GPU when one is visible. With several
        GPUs, ``"cuda"`` and ``n_jobs > 1`` spread members over them. A model
        fitted on a GPU pickles and predicts on a machine without one.""",
    "class_weight": """class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss of every member and vertex (or
        connector), as in scikit-learn's classifiers: a dict ``{label:
        weight}`` (missing labels weigh 1), ``"balanced"`` for
        ``n_samples / (n_classes * np.bincount(y))``. Given to the template's
        criterion as its ``weight`` (torch's weighted mean per minibatch), so
        the criterion must take one (``CrossEntropyLoss``, ``NLLLoss``). It
        multiplies ``sample_weight`` of :meth:`fit`.""",
    "sample_weight": """sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row in the training loss of every
            member and vertex: a minibatch's loss is the weighted mean
            ``sum_i s_i l_i / sum_i s_i`` of its rows' losses (with
            ``class_weight``, ``s_i`` times the weight of the row's class), as
            in scikit-learn's ``MLPClassifier``. ``None`` or equal weights:
            unweighted, bit for bit. Training by minibatches, weights of 2 are
            not exactly the same as repeating rows. Normalisation statistics
            (BatchNorm) of the sampled networks are estimated unweighted, as
            the members' own are.""",
    "warm_start": """warm_start : bool, default=False
        When fitting again, keep the fitted members (and vertices) bit for
        bit and train only the ones added by a larger ``n_members`` (or
        ``n_vertices``).""",
    "verbose": """verbose : int, default=0
        Governs everything a fit prints, members included: ``0`` silent;
        ``1`` progress bars (tqdm, on stderr) over members and vertices (or
        connectors); ``2`` also over the epochs of every fit; ``3`` also
        skorch's epoch table of every member. No bar is drawn inside joblib
        or Dask workers. A template left at skorch's default ``verbose`` follows
        this setting; any other value set on the template is kept.""",
    "early_stopping": """early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the training rows
        (drawn from ``random_state``) and let it decide, as
        ``MLPClassifier(early_stopping=True)`` does: members stop when their
        held-out loss has not improved for ``n_iter_no_change`` epochs and keep
        their best epoch's weights; each vertex keeps its best epoch by the
        held-out NLL of networks sampled from its simplex, and joins the
        simplex only if the held-out NLL of the prediction networks improves
        on the simplex without it (``n_vertices`` is then the most a simplex
        may have; ``n_vertices_`` says how many each kept). On the held-out
        rows the prediction networks are never worse than the member alone.
        Members and vertices train on the other rows only.
    validation_fraction : float, default=0.1
        Share of the rows held out with ``early_stopping=True``.
    n_iter_no_change : int, default=10
        Epochs without improvement of the held-out score after which a member
        or a vertex stops training (``early_stopping=True``).""",
    "memory": """memory : str, path, joblib.Memory or None, default=None
        Cache of trained networks, as in scikit-learn's
        ``Pipeline(memory=...)``: a directory, or a ``joblib.Memory`` whose
        location is one. Every trained member net (weights, optimizer state,
        skorch history) and every trained vertex is stored there, in skspro's
        pickle-free weights format, under a key that digests everything it
        depends on: the template's parameters (module, criterion and
        callback classes by their code), the training data and the class
        labels, the seed, the device kind and torch's thread count, and the
        versions of torch, skorch, scikit-learn, numpy and skspro; a vertex
        also the simplex it completes and its settings (``vertex_epochs``,
        ``vertex_lr``, ``reg``, ``vertex_weight_decay`` as given (with ``"holdout"``, the value
        it chose; the probe's member and vertices are entries of their own),
        ``"auto"`` with the rule it stands for (``"auto"`` and the number it resolves to are
        separate entries),
        ``n_train_samples``, ``train_sampling``).
        A later fit loads what an earlier one trained instead of training
        it again (members are shared by fits that differ only in simplex or
        connector settings, vertices by fits that differ in ``n_vertices``
        or ``n_samples``), with the same results to the last bit. Members and vertices loaded from it
        report the training time recorded when they were stored. An entry
        that cannot be read or fails its checks is ignored with a warning and
        overwritten. Callbacks run only when a network is trained (no
        checkpoint files are written for a loaded one), and code that a
        module calls outside its own class is not part of the key: clear the
        cache (``joblib.Memory(path).clear()``) after changing it. Loading an
        entry runs no code from it, but trust the directory as you would a
        model file (see docs/tuning.rst). ``None``: no caching.""",
    "y_true": """y_true : array-like of shape (n_samples,)
        True labels (any hashable type).""",
    "y_proba": """y_proba : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, e.g. ``model.predict_proba(X)``; float32 is
        fine. Rows must be non-negative and sum to 1. A 1-D array is the
        probability of the positive (greater) label of a binary problem.""",
    "binning": """n_bins : int, default=15
        Number of confidence bins.
    strategy : {"uniform", "quantile"}, default="uniform"
        ``"uniform"``: bins of equal width on [0, 1]. ``"quantile"``: bins of
        equal mass, with edges at the quantiles of the confidences (tied
        confidences stay in one bin). Bins are closed on the left.""",
    "labels": """labels : array-like of shape (n_classes,), default=None
        Label of each column of ``y_proba`` (e.g. ``model.classes_``).
        ``None``: the sorted distinct labels of ``y_true``, which must then
        be as many as the columns.""",
    "confidence": """confidence : array-like of shape (n_samples,), default=None
        Score by which rows are accepted (larger: more sure); ``None``: the
        top-label probability.""",
    "proba_networks": """proba_networks : array-like of shape (n_networks, n_samples, n_classes)
        Class probabilities of every network, e.g.
        ``model.predict_proba_networks(X)``. A 2-D array ``(n_samples,
        n_classes)`` is read as one network.""",
}


def fill_doc(obj: T) -> T:
    """Replace every ``{name}`` of :data:`FRAGMENTS` in ``obj``'s docstring."""
    if obj.__doc__:  # None under python -OO
        doc = obj.__doc__
        for name, text in FRAGMENTS.items():
            doc = doc.replace("{" + name + "}", text)
        obj.__doc__ = doc
    return obj
