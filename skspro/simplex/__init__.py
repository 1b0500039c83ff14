"""The mathematics of simplexes in weight space (no scikit-learn inside).

* :mod:`~skspro.simplex.volume` -- log-volume (Gram / QR in float64), the
  Cayley-Menger reference, and the incremental volume used in training;
* :mod:`~skspro.simplex.sampling` -- uniform (Dirichlet(1)) points from a
  seeded ``torch.Generator``;
* :mod:`~skspro.simplex.functional` -- stacked vertices of any ``nn.Module``
  and the vectorised forward of sampled networks;
* :mod:`~skspro.simplex.stacked` -- S networks of a chain of standard
  layers evaluated as one wide network (the fast prediction path);
* :mod:`~skspro.simplex.batchnorm` -- normalisation statistics per sampled
  network;
* :mod:`~skspro.simplex.networks` -- :class:`SampledNetworks`, the one object
  a fitted model predicts with.
"""

from .batchnorm import norm_buffer_names, recompute_norm_statistics
from .functional import (
    VMAP_MAX_ROWS,
    SimplexPoints,
    StackedVertices,
    forward_networks,
    forward_networks_loop,
    module_buffers,
    module_params,
)
from .networks import NetworkGroup, SampledNetworks
from .sampling import make_generator, sample_simplex_weights
from .stacked import stacked_forward, supports_stacked
from .volume import IncrementalLogVolume, cayley_menger_log_volume, flatten_vertices, log_volume

__all__ = [
    "IncrementalLogVolume",
    "NetworkGroup",
    "SampledNetworks",
    "SimplexPoints",
    "StackedVertices",
    "VMAP_MAX_ROWS",
    "cayley_menger_log_volume",
    "flatten_vertices",
    "forward_networks",
    "forward_networks_loop",
    "log_volume",
    "make_generator",
    "module_buffers",
    "module_params",
    "norm_buffer_names",
    "recompute_norm_statistics",
    "sample_simplex_weights",
    "stacked_forward",
    "supports_stacked",
]
