"""DeepEnsembleClassifier: the baseline our users come from."""

from __future__ import annotations

from ._base import BaseSimplexEnsemble
from ._docstrings import fill_doc
from ._members import SimplexSpec

__all__ = ["DeepEnsembleClassifier"]


@fill_doc
class DeepEnsembleClassifier(BaseSimplexEnsemble):
    """Deep ensemble: independently trained networks, softmax outputs averaged.

    Each member is a clone of the skorch ``estimator`` template trained from
    its own seed; ``predict_proba`` is the mean of the members'
    probabilities (Lakshminarayanan et al., 2017). It is
    :class:`ESPROClassifier` with ``n_vertices=0``, and with the same
    ``random_state`` the two share bit-identical members.

    Parameters
    ----------
    {template}
    n_members : int, default=5
        Number of independently trained networks.
    {class_weight}
    {early_stopping}
    random_state : int, RandomState instance or None, default=None
        Draws one integer seed per member (initialisation, shuffling,
        dropout). The caller's global torch random state is not changed.
    n_jobs : int, default=None
        Members trained in parallel through joblib (``None``: 1, unless in a
        ``joblib.parallel_config`` context). Results do not depend on it.
    {device}
    {warm_start}
    {verbose}
    {memory}

    Attributes
    ----------
    estimator_ : skorch.NeuralNetClassifier
        The validated, unfitted template every member was cloned from
        (sized for the data, with ``class_weight`` as the criterion's
        weights; after :func:`skspro.load`, without class weights, which only
        training uses).
    estimators_ : list of skorch.NeuralNetClassifier
        The fitted members (their ``history`` holds the training curves).
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_networks_ : int
        Networks evaluated per prediction (``n_members``).
    n_features_in_ : int
        Number of features (size of axis 1 of ``X``) seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when ``X`` had string column names.
    member_fit_times_ : ndarray of shape (n_members,)
        Seconds spent training each member.
    fit_time_ : float
        Wall-clock seconds of the whole fit.

    See Also
    --------
    ESPROClassifier : Grows a low-loss simplex around every member.

    References
    ----------
    B. Lakshminarayanan, A. Pritzel, C. Blundell. Simple and scalable
    predictive uncertainty estimation using deep ensembles. NeurIPS 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skspro import DeepEnsembleClassifier, default_estimator
    >>> X, y = load_iris(return_X_y=True)
    >>> template = default_estimator().set_params(max_epochs=5)
    >>> model = make_pipeline(
    ...     StandardScaler(),
    ...     DeepEnsembleClassifier(template, n_members=2, random_state=0),
    ... ).fit(X, y)
    >>> model.predict_proba(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints: dict = {**BaseSimplexEnsemble._parameter_constraints}

    def __init__(
        self,
        estimator=None,
        *,
        n_members=5,
        class_weight=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=None,
        n_jobs=None,
        device=None,
        warm_start=False,
        verbose=0,
        memory=None,
    ):
        self.estimator = estimator
        self.n_members = n_members
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device
        self.warm_start = warm_start
        self.verbose = verbose
        self.memory = memory

    def _simplex_spec(self) -> SimplexSpec:
        return SimplexSpec(n_vertices=0, n_samples=1)
