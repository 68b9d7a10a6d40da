"""The seed's sequence models as plain torch modules: (batch, window, features) -> (batch, 5)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LSTMConfig:
    hidden: tuple[int, ...] = (128, 64, 32)
    dense: int = 50
    dropout: float = 0.2


@dataclass(frozen=True)
class TransformerConfig:
    d_model: int = 512
    heads: int = 8
    layers: int = 4
    feed_forward: int = 2048
    dropout: float = 0.1


class StackedLSTM(nn.Module):
    """LSTM layers of decreasing width, batch norm on the last state, a dense layer, the head."""

    def __init__(self, n_features: int, n_outputs: int, config: LSTMConfig) -> None:
        super().__init__()
        sizes = (n_features, *config.hidden)
        self.lstms = nn.ModuleList(
            nn.LSTM(a, b, batch_first=True) for a, b in itertools.pairwise(sizes)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.norm = nn.BatchNorm1d(sizes[-1])
        self.head = nn.Sequential(
            nn.Linear(sizes[-1], config.dense),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.dense, n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lstm in self.lstms:
            x, _ = lstm(x)
            x = self.dropout(x)
        return self.head(self.norm(x[:, -1]))


class WindowTransformer(nn.Module):
    """Encoder-only transformer with a learned positional embedding and a mean-pooled head."""

    def __init__(
        self, n_features: int, n_outputs: int, window: int, config: TransformerConfig
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, config.d_model)
        self.position = nn.Parameter(torch.zeros(1, window, config.d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            config.d_model,
            config.heads,
            config.feed_forward,
            config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.position[:, : x.shape[1]]
        return self.head(self.norm(self.encoder(h).mean(dim=1)))
