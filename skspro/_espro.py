"""ESPROClassifier: an ensemble of low-loss simplexes, one per member."""

from __future__ import annotations

from dataclasses import replace
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseSimplexEnsemble, _finite
from ._docstrings import fill_doc
from ._inputs import HOLDOUT_SPLIT, check_training_steps, split_seed
from ._members import SimplexSpec, probe_vertex_weight_decay
from ._progress import show_progress
from ._training import is_fully_connected
from ._validation import split_validation

__all__ = ["ESPROClassifier"]

#: The share of the rows the members fit that ``vertex_weight_decay="holdout"`` holds out
#: to score its probe (the probe member trains on the rest).
HOLDOUT_FRACTION = 0.5


@fill_doc
class ESPROClassifier(BaseSimplexEnsemble):
    """Ensemble of simplexes of low loss (ESPRO, Benton et al., 2021).

    Every member is trained like a deep-ensemble member; then a simplex of
    low training loss is grown around it, one vertex at a time. The new
    vertex starts at the centroid of the existing ones (plus small noise) and
    is the only trainable tensor; earlier vertices stay frozen. Its loss per
    minibatch is the cross-entropy of networks sampled uniformly from the
    simplex minus ``reg * ||w||^2 * log Vol(simplex)``, ``w`` being the
    member's weights. At the end of fit ``n_samples`` points are drawn from
    each simplex (with their own BatchNorm statistics);
    ``predict_proba`` averages the softmax outputs of all these networks.

    Parameters
    ----------
    {template}
    n_members : int, default=4
        Number of independently trained members (simplexes). With the
        default one vertex of 10 epochs each and the default 40-epoch
        template, four members train for the 200 epochs of
        :class:`DeepEnsembleClassifier`'s five members (a vertex epoch costs
        1.0-1.5 member epochs, benchmarks/README.md), and predict with
        ``4 * n_samples`` networks. Four members with one vertex each beat
        three members with two vertices on validation data on the suite of
        benchmarks/recipe.py (``benchmarks/results/recipe-*.md``).
    n_vertices : int, default=1
        Vertices added to each member's simplex (``k``; the simplex has
        ``k + 1`` vertices). ``0`` gives exactly
        :class:`DeepEnsembleClassifier`.
    vertex_epochs : int, default=10
        Epochs of training for each added vertex (cosine learning-rate
        schedule).
    vertex_lr : float, default=None
        Learning rate of vertex training; ``None`` uses the template's
        ``lr``.
    reg : float, default=1e-4
        Strength of the volume regulariser. It multiplies the squared norm of
        the member's weights: the argument in docs/method.rst says this gives
        simplexes of similar relative size (edge length over weight norm, see
        ``relative_edge_lengths_``) across model sizes; so far it is measured
        on small digits models only.
    vertex_weight_decay : float, "auto" or "holdout", default="holdout"
        Decoupled weight decay of each new vertex during its training, as in
        :class:`torch.optim.AdamW` whatever the template's optimizer: after
        every step the vertex is multiplied by ``1 - lr * vertex_weight_decay``
        (``lr`` the step's vertex learning rate, following the cosine
        schedule). It shrinks the vertex towards zero, so the sampled networks
        are less confident than vertices trained on the training loss alone;
        it is per unit of learning rate, so scale it down for templates with a
        large ``lr`` (with SGD at ``lr=0.1``, ``1.0`` removes a tenth of the
        weights per step; ``lr * vertex_weight_decay >= 1`` is refused). It
        comes on top of any ``weight_decay`` of the template's optimizer,
        which vertex training inherits like the rest of the optimizer's
        settings.

        ``"auto"``: ``0.03 / (lr * steps)``, ``lr`` the template's (the
        members') learning rate and ``steps`` the training steps per epoch as
        skorch's training iterator takes them (``batch_size``,
        ``iterator_train__drop_last`` counted): a shrink of about 3 % per
        epoch when the vertex trains at the members' rate, on a few hundred
        rows as on many thousands, and proportionally less with a smaller
        ``vertex_lr`` (never more than 3 % in one step, which binds only for
        a ``vertex_lr`` above ``steps`` times the members'); for fully
        connected networks (every layer that holds parameters is a
        ``torch.nn.Linear`` or a normalisation layer:
        :class:`skspro.modules.MLP` or your own), ``0`` for any other module
        (convolutions, embeddings, attention, recurrent layers). Measured on
        validation data (``benchmarks/results/recipe-*.md``): on the MLP
        tasks of the suite whose members over-fit, the decay lowered ESPRO's
        NLL on every one; on the three CNNs it raised it on every one. On
        small data sets whose members do not over-fit (wine and iris, about
        100 training rows) it made the sampled networks under-confident and
        ESPRO 13-24 % worse than the deep ensemble; the training data do not
        tell such sets from small over-fitting ones.

        ``"holdout"`` (the default) lets held-out rows choose between ``0.0``
        and ``"auto"``: a probe member is trained on a stratified half of the
        training rows (seeded from ``random_state`` and trained as the
        members are, without early stopping), a simplex of one vertex is
        grown on it with each decay, and the decay whose prediction networks
        have the lower NLL on the other half is the one the members' vertices
        train with (``vertex_weight_decay_``; a tie keeps ``"auto"``). The
        probe is not part of the model, whose members are those of the fit
        without it, trained on all the rows; its split does not depend on
        ``n_members`` or ``n_vertices``, so a warm start equals the fit from
        scratch. It adds a tenth to a half to the training time (one probe
        fit, not run in parallel with the members: more with ``n_jobs``),
        nothing for modules that ``"auto"`` does not decay, which are not
        probed. On the 12 data sets of ``benchmarks/results/defaults.md`` its
        raw test NLL was not worse than the deep ensemble's beyond seed
        noise on any, and its sampled networks were not worse than their
        members on any; the rows choose for clean NLL: on the digits MLP,
        where it dropped the decay, more shift cells were worse than the
        deep ensemble's than with ``"auto"``. Choose ``"auto"`` for the
        deep ensemble's training cost without the probe, or where shift
        matters more than clean NLL. ``"holdout"`` refuses templates with
        their own ``iterator_train__sampler`` (its indices cover all the
        rows, not the probe's half) and classes with a single row (a
        stratified half needs two); ``"auto"`` takes both.
        A cross-validation of the two values (``GridSearchCV``) decides on
        more rows at several times the cost (docs/tuning.rst).

        Set a number to choose. The value used, when it is not 0, is in each
        vertex's history: ``vertex_histories_[i][j][-1, "vertex_weight_decay"]``.
    n_train_samples : int, default=1
        Networks sampled from the simplex per training step. With one, a
        vertex step costs about one step of the member (1.0-1.5x measured on
        CPU and GPU); more samples per step gave the same test NLL at equal
        members in the quality benchmark and cost more per step (each sampled
        network is a separate forward and backward pass on its part of the
        minibatch).
    train_sampling : {"split", "full"}, default="split"
        ``"split"`` cuts each minibatch into ``n_train_samples`` parts, each
        evaluated by its own sampled network (the FLOPs of one network).
        ``"full"`` evaluates every sampled network on the whole minibatch, as
        the published code does (``n_train_samples`` times the FLOPs).
    n_samples : int, default=10
        Networks drawn from each simplex for prediction; ``n_networks_ =
        n_members * n_samples``.
    {class_weight}
    {early_stopping}
    random_state : int, RandomState instance or None, default=None
        Draws one integer seed per member, from which the seeds of its
        training, its vertices and its sample points derive. Members equal
        those of a ``DeepEnsembleClassifier`` with the same
        ``random_state``. The caller's global torch random state is not
        changed.
    n_jobs : int, default=None
        Members (with their simplexes) trained in parallel through joblib.
        Results do not depend on it.
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
        The fitted members; vertex 0 of each simplex is its weights.
    simplexes_ : list of skspro.simplex.StackedVertices
        The vertices of every member's simplex, stacked per parameter.
    n_vertices_ : ndarray of shape (n_members,)
        Vertices each simplex has: ``n_vertices``, or fewer with
        ``early_stopping=True`` when a vertex did not improve the held-out
        NLL. Per-vertex arrays below have ``n_kept = n_vertices_.max()``
        columns, NaN beyond a simplex's vertices.
    validation_nlls_ : list of list of float
        With ``early_stopping=True``, per member: the held-out NLL of its
        prediction networks for the member alone, then for each vertex tried
        (the last one was rejected when fewer than ``n_vertices`` were kept).
        Empty lists otherwise, and after :func:`skspro.load` (the held-out
        scores, like the training histories, are not stored in the file).
    vertex_weight_decay_ : float, "auto" or None
        The vertex decay the vertices trained in the last fit trained with:
        ``vertex_weight_decay`` as given, or with ``"holdout"`` the value it chose (``"auto"`` without
        probing for modules that ``"auto"`` does not decay). Files keep it
        (``None`` after :func:`skspro.load` of a ``"holdout"`` fit saved by
        a version that did not). A warm start with ``"holdout"`` keeps the
        choice of the fit it continues when that fit probed; a warm start
        that changes ``vertex_weight_decay`` trains the new vertices with the
        new setting (as any changed parameter) and reports that.
    holdout_nlls_ : dict
        With ``"holdout"``: the probe's held-out NLL per decay,
        ``{"auto": ..., 0.0: ...}`` (empty when nothing was probed). Files
        keep it.
    holdout_fit_time_ : float
        Training seconds of the probe's member and vertices (counted as
        ``member_fit_times_`` and ``vertex_fit_times_`` count theirs; in
        ``fit_time_``, not in those). 0 when nothing was probed; files keep
        it (NaN after :func:`skspro.load` of a ``"holdout"`` fit saved by a
        version that did not).
    log_volumes_ : ndarray of shape (n_members, n_kept)
        Log-volume of each simplex after each added vertex.
    relative_edge_lengths_ : ndarray of shape (n_members, n_kept)
        ``||theta_i - theta_0|| / ||theta_0||`` for every added vertex.
    vertex_histories_ : list of list of skorch.History
        Per member, per vertex: the skorch training history (``train_loss``,
        ``ce_loss``, ``log_volume``, ``dur`` per epoch).
    sample_weights_ : list of ndarray of shape (n_samples, n_vertices + 1)
        Barycentric coordinates of the networks used for prediction.
    n_networks_ : int
        Networks evaluated per prediction.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when ``X`` had string column names.
    member_fit_times_ : ndarray of shape (n_members,)
    vertex_fit_times_ : ndarray of shape (n_members, n_kept)
    fit_time_ : float
        Seconds of training in the last fit, the ``"holdout"`` probe's included.

    See Also
    --------
    DeepEnsembleClassifier : The same members without simplexes.
    ESPROClassifier.predict_proba_centroids : One network per simplex (its
        centroid) instead of ``n_samples``.

    References
    ----------
    G. W. Benton, W. J. Maddox, S. Lotfi, A. G. Wilson. Loss Surface
    Simplexes for Mode Connecting Volumes and Fast Ensembling. ICML 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skspro import ESPROClassifier, default_estimator
    >>> X, y = load_iris(return_X_y=True)
    >>> template = default_estimator().set_params(max_epochs=5)
    >>> espro = ESPROClassifier(template, n_members=2, n_vertices=1, vertex_epochs=2,
    ...                         n_samples=4, random_state=0)
    >>> model = make_pipeline(StandardScaler(), espro).fit(X, y)
    >>> espro.n_networks_
    8
    >>> model.predict_proba(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        **BaseSimplexEnsemble._parameter_constraints,
        "n_vertices": [Interval(Integral, 0, None, closed="left")],
        "vertex_epochs": [Interval(Integral, 1, None, closed="left")],
        "vertex_lr": [Interval(Real, 0, None, closed="neither"), None],
        "reg": [Interval(Real, 0, None, closed="left")],
        "vertex_weight_decay": [Interval(Real, 0, None, closed="left"), StrOptions({"auto", "holdout"})],
        "n_train_samples": [Interval(Integral, 1, None, closed="left")],
        "train_sampling": [StrOptions({"split", "full"})],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        estimator=None,
        *,
        n_members=4,
        n_vertices=1,
        vertex_epochs=10,
        vertex_lr=None,
        reg=1e-4,
        vertex_weight_decay="holdout",
        n_train_samples=1,
        train_sampling="split",
        n_samples=10,
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
        self.n_vertices = n_vertices
        self.vertex_epochs = vertex_epochs
        self.vertex_lr = vertex_lr
        self.reg = reg
        self.vertex_weight_decay = vertex_weight_decay
        self.n_train_samples = n_train_samples
        self.train_sampling = train_sampling
        self.n_samples = n_samples
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

    def centroid_networks(self, norm_X=None):
        """The centroid of every member's simplex, as a :class:`~skspro.simplex.SampledNetworks`.

        Parameters
        ----------
        norm_X : array-like, default=None
            Training inputs on which BatchNorm statistics of the centroids are
            re-estimated (one pass per member, in the members' batch size).
            ``None``: the mean of the sampled networks' statistics (see
            :meth:`~skspro.simplex.SampledNetworks.at_centroids`); modules
            without BatchNorm need nothing.

        Returns
        -------
        skspro.simplex.SampledNetworks
            ``n_members`` networks.
        """
        from ._inputs import validate_predict_data

        batches = None
        if norm_X is not None:
            x = validate_predict_data(self, norm_X).to(self.networks_.device)
            size = self.estimators_[0].batch_size
            size = size if size and size > 0 else len(x)
            batches = [x[i : i + size] for i in range(0, len(x), size)]
        return self.networks_.at_centroids(batches)

    def predict_proba_centroids(self, X, *, norm_X=None) -> np.ndarray:
        """Mean class probabilities of the simplexes' centroids alone.

        One forward per member instead of ``n_samples`` (the "midpoint" of
        learning subspaces). Measured on digits (docs/method.rst): the
        centroids' ensemble has about the NLL of the full ESPRO ensemble and
        better than the members' deep ensemble, at the members' prediction
        cost.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
        norm_X : array-like, default=None
            See :meth:`centroid_networks`.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        from ._inputs import validate_predict_data

        x = validate_predict_data(self, X)
        return _finite(self.centroid_networks(norm_X).predict_proba(x))

    def predict_centroids(self, X, *, norm_X=None) -> np.ndarray:
        """Most probable class of the centroids' ensemble (:meth:`predict_proba_centroids`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
        norm_X : array-like, default=None

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.classes_[np.argmax(self.predict_proba_centroids(X, norm_X=norm_X), axis=1)]

    def _fit_spec(self, template, net, data, spec: SimplexSpec, first_seed: int, previous) -> tuple:
        """``spec`` with the vertex decay the vertices train with (with ``"holdout"``, the one
        its probe chooses), and ``vertex_weight_decay_``, ``holdout_nlls_`` and ``holdout_fit_time_``."""
        if spec.vertex_weight_decay != "holdout":
            decay, scores, seconds = spec.vertex_weight_decay, {}, 0.0
        elif previous is not None and getattr(self, "holdout_nlls_", None):
            # a warm start keeps the choice
            decay, scores, seconds = (
                self.vertex_weight_decay_,
                dict(self.holdout_nlls_),
                self.holdout_fit_time_,
            )
        elif not is_fully_connected(net.module_):
            decay, scores, seconds = "auto", {}, 0.0  # "auto" means no decay here: nothing to choose
        else:
            seed = split_seed(first_seed, HOLDOUT_SPLIT)
            scores, seconds = self._probe_decays(template, net, data, spec, seed)
            # the lower held-out NLL; a tie keeps "auto", a score that is not finite loses
            decay = min(scores, key=lambda d: scores[d] if np.isfinite(scores[d]) else np.inf)
            if show_progress(self.verbose):
                from tqdm.auto import tqdm

                nlls = ", ".join(f"{d!r}: {nll:.4g}" for d, nll in scores.items())
                owner = type(self).__name__
                tqdm.write(f'{owner}(vertex_weight_decay="holdout") chose {decay!r} (held-out NLL {nlls})')
        return replace(spec, vertex_weight_decay=decay), {
            "vertex_weight_decay_": decay,
            "holdout_nlls_": scores,
            "holdout_fit_time_": float(seconds),
        }

    def _probe_decays(self, template, net, data, spec: SimplexSpec, seed: int) -> tuple[dict, float]:
        """The probe's held-out NLL per decay, on a stratified half of ``data``, and its training seconds."""
        owner = type(self).__name__
        setting = f'{owner}(vertex_weight_decay="holdout") holds out a stratified half'
        kept, held_out = split_validation(
            data,
            HOLDOUT_FRACTION,
            seed,
            self.n_iter_no_change,
            owner,
            template=template,
            setting=setting,
            off='set vertex_weight_decay to 0.0 or "auto"',
            more="",
        )
        try:
            check_training_steps(net, kept.X, kept.y)
        except ValueError as error:
            raise ValueError(
                f"{setting}, on whose other half its probe member trains. {error} Or set "
                'vertex_weight_decay to 0.0 or "auto" (no probe).'
            ) from None
        return probe_vertex_weight_decay(
            template,
            kept,
            held_out,
            seed,
            spec,
            data.classes,
            owner=owner,
            device=self.device,
            verbose=self.verbose,
            memory=self.memory,
        )

    def _file_fitted(self) -> dict:
        """The decay the vertices trained with and the probe's scores (JSON keys: ``"0.0"``)."""
        scores = {str(decay): float(nll) for decay, nll in self.holdout_nlls_.items()}
        decay = self.vertex_weight_decay_
        return {
            "vertex_weight_decay_": decay if decay is None or isinstance(decay, str) else float(decay),
            "holdout_nlls_": scores,
            "holdout_fit_time_": float(self.holdout_fit_time_),
        }

    def _restore(self, members, extra) -> None:
        super()._restore(members, extra)
        fitted = extra["fitted"]
        decay = self.vertex_weight_decay
        # files written before the header kept the choice: None for a "holdout" fit
        chosen = fitted.get("vertex_weight_decay_", None if decay == "holdout" else decay)
        scores = {
            key if key == "auto" else float(key): nll for key, nll in fitted.get("holdout_nlls_", {}).items()
        }
        seconds = fitted.get("holdout_fit_time_", float("nan") if decay == "holdout" else 0.0)
        vars(self).update(vertex_weight_decay_=chosen, holdout_nlls_=scores, holdout_fit_time_=seconds)

    def _simplex_spec(self) -> SimplexSpec:
        if self.n_vertices == 0:
            return SimplexSpec(n_vertices=0, n_samples=1)
        return SimplexSpec(
            n_vertices=self.n_vertices,
            vertex_epochs=self.vertex_epochs,
            vertex_lr=self.vertex_lr,
            reg=self.reg,
            vertex_weight_decay=self.vertex_weight_decay,
            n_train_samples=self.n_train_samples,
            train_sampling=self.train_sampling,
            n_samples=self.n_samples,
        )
