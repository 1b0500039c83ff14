"""Small data sets for ensembles and image corruptions for dataset-shift evaluation.

* :func:`make_two_spirals` -- the two-spirals problem of the paper's 2-D
  figures;
* :func:`make_mnist1d` -- MNIST-1D, generated locally by the ``mnist1d``
  package (no download);
* :func:`corrupt_images` and :data:`CORRUPTIONS` -- noise, blur, rotation,
  translation and contrast at severities 1 to 5, to measure accuracy and
  calibration under shift.

Nothing here downloads data, and nothing changes the global random state.
"""

from __future__ import annotations

import random
from numbers import Integral, Real

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage
from sklearn.utils import check_random_state

__all__ = ["CORRUPTIONS", "corrupt_images", "make_mnist1d", "make_two_spirals"]

_MAX_SEED = np.iinfo(np.int32).max


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def make_two_spirals(
    n_samples: int = 1000,
    *,
    noise: float = 0.05,
    n_turns: float = 1.5,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals in the plane, one per class.

    A point of class 0 at angle ``theta`` in ``[0, 2 pi n_turns]`` lies at
    radius ``theta / (2 pi n_turns)`` (so within the unit disc); class 1 is
    the same spiral rotated by 180 degrees. Angles are drawn so that points
    are spread evenly along the arms; Gaussian noise is added to both
    coordinates.

    Parameters
    ----------
    n_samples : int, default=1000
        Total number of points; class 0 gets the extra point when odd.
    noise : float, default=0.05
        Standard deviation of the Gaussian noise (the outer end of an arm is
        at radius 1; neighbouring arms are ``1 / (2 n_turns)`` apart).
    n_turns : float, default=1.5
        Turns of each spiral.
    random_state : int, RandomState instance or None, default=None
        Seed of the angles, the noise and the shuffling.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
        Coordinates, float64.
    y : ndarray of shape (n_samples,)
        Class labels 0 and 1 (int64), shuffled.

    Examples
    --------
    >>> import numpy as np
    >>> from skspro.datasets import make_two_spirals
    >>> X, y = make_two_spirals(200, noise=0.0, random_state=0)
    >>> X.shape, np.bincount(y).tolist()
    ((200, 2), [100, 100])
    >>> bool(np.abs(X).max() <= 1.0)
    True
    """
    n_samples = _check_int(n_samples, "n_samples", 2)
    if not isinstance(noise, Real) or not noise >= 0:
        raise ValueError(f"noise must be a non-negative number; got {noise!r}.")
    if not isinstance(n_turns, Real) or not n_turns > 0:
        raise ValueError(f"n_turns must be a positive number; got {n_turns!r}.")
    rng = check_random_state(random_state)
    y = np.zeros(n_samples, dtype=np.int64)
    y[n_samples - n_samples // 2 :] = 1
    # sqrt of a uniform draw: equal density per unit of arm length, which grows with the radius.
    radius = np.sqrt(rng.uniform(size=n_samples))
    theta = 2 * np.pi * n_turns * radius
    sign = np.where(y == 0, 1.0, -1.0)
    X = sign[:, None] * np.column_stack([radius * np.cos(theta), radius * np.sin(theta)])
    X += rng.normal(scale=noise, size=X.shape)
    order = rng.permutation(n_samples)
    return X[order], y[order]


def make_mnist1d(
    n_samples: int = 5000, *, random_state: int | np.random.RandomState | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D: ten classes of 1-D signals of length 40, generated locally.

    A wrapper around ``mnist1d.data.make_dataset`` (Greydanus, 2020), with
    its default transformations (padding, scaling, translation, correlated and
    i.i.d. noise, shear). It never downloads. The package seeds numpy's and
    Python's global generators; this function saves and restores both, so
    the caller's random state is untouched.

    Parameters
    ----------
    n_samples : int, default=5000
        Number of signals (the classes are balanced up to one sample).
    random_state : int, RandomState instance or None, default=None
        Seed of the generator. ``None`` draws one from numpy's global
        generator, as scikit-learn does.

    Returns
    -------
    X : ndarray of shape (n_samples, 40)
        Signals (float64, standardised over the whole set).
    y : ndarray of shape (n_samples,)
        Digit labels 0-9 (int64).

    References
    ----------
    S. Greydanus, D. Kobak. Scaling down deep learning with MNIST-1D.
    ICML 2024.

    Examples
    --------
    >>> from skspro.datasets import make_mnist1d
    >>> X, y = make_mnist1d(100, random_state=0)
    >>> X.shape, sorted(set(y.tolist())) == list(range(10))
    ((100, 40), True)
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    seed = int(check_random_state(random_state).randint(_MAX_SEED))
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = -(-n_samples // 10) * 10  # make_dataset draws num_samples // 10 per class
    args.train_split = 1.0
    args.seed = seed
    # make_dataset calls np.random.seed and random.seed and draws from the global generators:
    # the legacy global-state API is exactly what has to be saved and restored here.
    numpy_state, python_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        random.setstate(python_state)
    X = np.asarray(data["x"][:n_samples], dtype=np.float64)
    return X, np.asarray(data["y"][:n_samples], dtype=np.int64)


CORRUPTIONS: tuple[str, ...] = ("gaussian_noise", "gaussian_blur", "rotation", "translation", "contrast")

# Strength at severities 1..5 (see corrupt_images for the units).
_SEVERITY_LEVELS = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # std, fraction of the value range (as ImageNet-C)
    "gaussian_blur": (0.05, 0.075, 0.1, 0.125, 0.15),  # std of the kernel, fraction of the image side
    "rotation": (15.0, 30.0, 45.0, 60.0, 90.0),  # degrees, random sign per image
    "translation": (0.06, 0.12, 0.18, 0.25, 0.33),  # fraction of the image side, random direction per image
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),  # factor on the deviation from the image mean (as ImageNet-C)
}


def _as_image_stack(X: np.ndarray, image_shape: tuple[int, ...] | None) -> np.ndarray:
    """View ``X`` as (n, channels, height, width)."""
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) not in (2, 3) or int(np.prod(image_shape)) != int(np.prod(X.shape[1:])):
            raise ValueError(
                f"image_shape={image_shape} does not fit rows of shape {X.shape[1:]}: give (height, width) "
                "or (channels, height, width) with as many pixels as each row has values."
            )
        return X.reshape((len(X), *image_shape)).reshape(len(X), -1, *image_shape[-2:])
    if X.ndim == 3:
        return X[:, np.newaxis]
    if X.ndim == 4:
        return X
    if X.ndim == 2:
        raise ValueError(
            f"X is flat, shaped {X.shape}; pass image_shape=(height, width) (e.g. (8, 8) for "
            "sklearn's load_digits) or (channels, height, width)."
        )
    raise ValueError(
        f"X must be images shaped (n, height, width) or (n, channels, height, width), or flat with "
        f"image_shape=; got shape {X.shape}."
    )


def corrupt_images(
    X: ArrayLike,
    corruption: str,
    severity: int,
    *,
    image_shape: tuple[int, ...] | None = None,
    value_range: tuple[float, float] | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> np.ndarray:
    """Corrupted copies of images, to measure a model under dataset shift.

    In the spirit of MNIST-C / CIFAR-10-C (Hendrycks & Dietterich, 2019),
    with strengths relative to the image size and value range so that one
    severity means roughly the same on 8x8 digits and larger images.

    ==================  ================================================================
    corruption          severity 1 .. 5
    ==================  ================================================================
    ``gaussian_noise``  add noise of std 0.08 .. 0.38 x value range, clip to the range
    ``gaussian_blur``   Gaussian filter of std 0.05 .. 0.15 x image side (pixels)
    ``rotation``        rotate by 15 .. 90 degrees, clockwise or not at random
    ``translation``     shift by 0.06 .. 0.33 x image side, in a random direction
    ``contrast``        scale deviations from the image's mean (per channel) by 0.4 .. 0.05
    ==================  ================================================================

    Rotation and translation interpolate linearly and fill with the low end
    of the value range. For a fixed seed the random draws (noise, signs,
    directions) are the same at every severity, so severities differ only in
    strength.

    Parameters
    ----------
    X : array-like of shape (n, height, width), (n, channels, height, width) or (n, n_pixels)
        Images; flat rows need ``image_shape``. Not modified.
    corruption : str
        One of :data:`CORRUPTIONS`.
    severity : int
        1 (mild) to 5 (strong).
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(channels, height, width)`` of a flat row.
    value_range : (float, float), default=None
        The range of pixel values (e.g. ``(0, 1)``); ``None`` uses the
        minimum and maximum of ``X``. Sets the noise scale, the clipping and
        the fill value.
    random_state : int, RandomState instance or None, default=None
        Seed of the random draws.

    Returns
    -------
    ndarray
        Same shape as ``X``; float (``X``'s dtype if floating, else float64).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skspro.datasets import corrupt_images
    >>> X = load_digits().data / 16  # flat rows of 8x8 images in [0, 1]
    >>> X_rotated = corrupt_images(X, "rotation", 3, image_shape=(8, 8), value_range=(0, 1),
    ...                            random_state=0)
    >>> X_rotated.shape == X.shape
    True
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(f"Unknown corruption {corruption!r}; choose one of {', '.join(CORRUPTIONS)}.")
    if isinstance(severity, bool) or not isinstance(severity, Integral) or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an integer from 1 (mild) to 5 (strong); got {severity!r}.")
    X = np.asarray(X)
    dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
    if X.ndim < 2 or len(X) == 0:
        raise ValueError(f"X must hold at least one image; got shape {X.shape}.")
    images = _as_image_stack(X, image_shape).astype(np.float64)  # a copy: X is never written to
    if not np.isfinite(images).all():
        raise ValueError("X contains NaN or infinite values; corruptions need finite pixel values.")
    if value_range is None:
        low, high = float(images.min()), float(images.max())
    elif len(value_range) != 2 or not float(value_range[1]) >= float(value_range[0]):
        raise ValueError(f"value_range must be (low, high) with low <= high; got {value_range!r}.")
    else:
        low, high = float(value_range[0]), float(value_range[1])
    rng = check_random_state(random_state)
    level = _SEVERITY_LEVELS[corruption][severity - 1]
    n, height, width = len(images), images.shape[-2], images.shape[-1]
    side = max(height, width)

    if corruption == "gaussian_noise":
        noisy = images + rng.normal(size=images.shape) * (level * (high - low))
        out = np.clip(noisy, low, high)
    elif corruption == "gaussian_blur":
        out = ndimage.gaussian_filter(images, sigma=(0, 0, level * side, level * side), mode="nearest")
    elif corruption == "rotation":
        clockwise = rng.uniform(size=n) < 0.5
        out = np.empty_like(images)
        for turn, chosen in ((-level, clockwise), (level, ~clockwise)):
            if chosen.any():
                out[chosen] = ndimage.rotate(
                    images[chosen], turn, axes=(-1, -2), reshape=False, order=1, mode="constant", cval=low
                )
    elif corruption == "translation":
        direction = rng.uniform(0, 2 * np.pi, size=n)
        shifts = level * side * np.column_stack([np.sin(direction), np.cos(direction)])
        out = np.stack(
            [
                ndimage.shift(image, (0, *shift), order=1, mode="constant", cval=low)
                for image, shift in zip(images, shifts)
            ]
        )
    else:  # contrast
        mean = images.mean(axis=(-2, -1), keepdims=True)
        out = mean + level * (images - mean)
    return out.reshape(X.shape).astype(dtype, copy=False)
