"""Small ready-made ``torch.nn.Module`` architectures.

skspro works with any module; these are the defaults and the ones the demo,
tests and benchmarks use.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP", "SmallCNN"]


class MLP(nn.Module):
    """Multi-layer perceptron for tabular data, returning logits.

    Inputs of any shape ``(n, ...)`` are flattened to ``(n, input_dim)``.

    Parameters
    ----------
    input_dim : int
        Number of input features (after flattening).
    n_classes : int
        Number of output logits.
    hidden_units : sequence of int, default=(128, 128)
        Width of each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each hidden layer.
    batch_norm : bool, default=False
        Insert ``BatchNorm1d`` before each activation.

    Examples
    --------
    >>> import torch
    >>> from skspro.modules import MLP
    >>> MLP(4, 3, hidden_units=(8,))(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        input_dim: int,
        n_classes: int,
        hidden_units: Sequence[int] = (128, 128),
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = int(input_dim)
        for units in hidden_units:
            layers.append(nn.Linear(width, int(units)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(units)))
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = int(units)
        layers.append(nn.Linear(width, int(n_classes)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))

    def forward_chain(self) -> list[nn.Module]:
        """The layers ``forward`` applies, in order (for the wide evaluation of sampled networks)."""
        return [nn.Flatten(1), self.layers]


class SmallCNN(nn.Module):
    """Two-block convolutional network for small images, returning logits.

    Parameters
    ----------
    in_channels : int, default=1
    n_classes : int, default=10
    channels : int, default=16
        Channels of the first block (the second has twice as many).
    batch_norm : bool, default=True
        ``BatchNorm2d`` after each convolution.

    Examples
    --------
    >>> import torch
    >>> from skspro.modules import SmallCNN
    >>> SmallCNN(n_classes=10)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self, in_channels: int = 1, n_classes: int = 10, channels: int = 16, batch_norm: bool = True
    ) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
            return layers

        self.features = nn.Sequential(*block(in_channels, channels), *block(channels, 2 * channels))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * channels, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def forward_chain(self) -> list[nn.Module]:
        """The layers ``forward`` applies, in order (for the wide evaluation of sampled networks)."""
        return [self.features, self.head]
