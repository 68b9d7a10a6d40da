"""The sequence families' networks as plain torch modules: (batch, window, features) ->
(batch, horizons). A cross-sectional network (``Network.cross_sectional``) reads its batch as
the symbols of one cross-section: each row's forecast depends on the other rows."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


def _scaled(size: int, width: float, least: int = 2) -> int:
    return max(least, round(size * width))


@dataclass(frozen=True)
class LSTMConfig:
    hidden: tuple[int, ...] = (128, 64, 32)
    dense: int = 50
    dropout: float = 0.2

    def widened(self, width: float) -> dict[str, Any]:
        """The layer widths times ``width`` (the tuning search scales a size preset so)."""
        return {"hidden": tuple(_scaled(h, width) for h in self.hidden),
                "dense": _scaled(self.dense, width)}  # fmt: skip


@dataclass(frozen=True)
class TransformerConfig:
    d_model: int = 512
    heads: int = 8
    layers: int = 4
    feed_forward: int = 2048
    dropout: float = 0.1

    def widened(self, width: float) -> dict[str, Any]:
        heads = self.heads  # d_model stays a multiple of the heads
        return {"d_model": max(heads, heads * round(self.d_model * width / heads)),
                "feed_forward": _scaled(self.feed_forward, width, least=4)}  # fmt: skip


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


@dataclass(frozen=True)
class AttentionLSTMConfig:
    hidden: int = 64  # per direction
    layers: int = 2
    attention: int = 32  # width of the additive attention's score layer
    dropout: float = 0.2

    def widened(self, width: float) -> dict[str, Any]:
        return {"hidden": _scaled(self.hidden, width), "attention": _scaled(self.attention, width)}


@dataclass(frozen=True)
class TemporalCNNConfig:
    channels: int = 64
    kernel: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)  # receptive field 1 + (kernel-1)*sum = 63 bars
    dropout: float = 0.1

    def widened(self, width: float) -> dict[str, Any]:
        return {"channels": _scaled(self.channels, width)}


class AttentionBiLSTM(nn.Module):
    """A bidirectional LSTM whose states are pooled by additive (Bahdanau) attention over time;
    :meth:`attention` returns the weights, so a user can see which bars a forecast rests on."""

    def __init__(self, n_features: int, n_outputs: int, config: AttentionLSTMConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            n_features, config.hidden, num_layers=config.layers, batch_first=True,
            bidirectional=True, dropout=config.dropout if config.layers > 1 else 0.0,
        )  # fmt: skip
        width = 2 * config.hidden
        self.score = nn.Sequential(
            nn.Linear(width, config.attention), nn.Tanh(), nn.Linear(config.attention, 1)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n_outputs))

    def attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(states (batch, window, 2*hidden), weights (batch, window) summing to 1 over time)."""
        states, _ = self.lstm(x)
        weights = torch.softmax(self.score(states).squeeze(-1), dim=1)
        return states, weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, weights = self.attention(x)
        context = (states * weights.unsqueeze(-1)).sum(dim=1)
        return self.head(self.dropout(context))


class TemporalCNN(nn.Module):
    """Causal dilated 1D convolutions (a temporal convolutional network): residual blocks whose
    dilation doubles, so the last bar's output sees the whole window; the head reads it."""

    def __init__(self, n_features: int, n_outputs: int, config: TemporalCNNConfig) -> None:
        super().__init__()
        self.inp = nn.Conv1d(n_features, config.channels, 1)
        self.pads = [(config.kernel - 1) * d for d in config.dilations]
        self.convs = nn.ModuleList(
            nn.Conv1d(config.channels, config.channels, config.kernel, dilation=d)
            for d in config.dilations
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.channels, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x.transpose(1, 2))  # (batch, channels, window)
        for pad, conv in zip(self.pads, self.convs, strict=True):
            # left padding only: a bar's output never sees later bars
            h = h + self.dropout(torch.relu(conv(nn.functional.pad(h, (pad, 0)))))
        return self.head(h[:, :, -1])


@dataclass(frozen=True)
class CrossAssetConfig:
    d_model: int = 64  # width of the temporal encoder's states and of the attention
    heads: int = 4
    layers: int = 2  # blocks of attention across symbols (at every bar) then along time
    feed_forward: int = 128
    dropout: float = 0.1

    def widened(self, width: float) -> dict[str, Any]:
        heads = self.heads  # d_model stays a multiple of the heads
        return {"d_model": max(heads, heads * round(self.d_model * width / heads)),
                "feed_forward": _scaled(self.feed_forward, width, least=4)}  # fmt: skip


class CrossAssetAttention(nn.Module):
    """Attention across the symbols of a cross-section, at every bar of the window: a causal
    LSTM encodes each symbol's window; each block lets every symbol attend to the others at the
    same bar (a Transformer layer over the symbols, no symbol embedding: permutation-equivariant)
    and then carries what it learnt along time (an LSTM, residual); additive attention over the
    bars pools each symbol's states into its forecast. All windows of a cross-section end at the
    same bar, so no symbol sees a later bar of another.

    ``forward`` takes ONE cross-section, (symbols, window, features) -> (symbols, horizons) (the
    served and ONNX-exported signature); :meth:`cross_sections` takes a batch of them padded to
    the widest, with a mask of the padding (what training uses)."""

    def __init__(self, n_features: int, n_outputs: int, config: CrossAssetConfig) -> None:
        super().__init__()
        d = config.d_model
        self.encode = nn.LSTM(n_features, d, batch_first=True)
        sizes = (d, config.heads, config.feed_forward, config.dropout)
        self.across = nn.ModuleList(
            nn.TransformerEncoderLayer(*sizes, batch_first=True, norm_first=True)
            for _ in range(config.layers)
        )
        self.along = nn.ModuleList(nn.LSTM(d, d, batch_first=True) for _ in range(config.layers))
        self.norm = nn.LayerNorm(d)
        self.score = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1))
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(d, n_outputs)

    def cross_sections(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, symbols, window, features), padding (batch, symbols) True where a symbol is
        absent -> (batch, symbols, horizons) (padded symbols' outputs are meaningless)."""
        batch, symbols, window, _ = x.shape
        h, _ = self.encode(x.flatten(0, 1))  # (batch*symbols, window, d)
        mask = None
        if padding is not None:  # the same symbols are absent at every bar of a cross-section
            mask = padding.repeat_interleave(window, dim=0)  # (batch*window, symbols)
        for across, along in zip(self.across, self.along, strict=True):
            # (batch, symbols, window, d) -> one sequence over the symbols per (batch, bar)
            bars = h.unflatten(0, (batch, symbols)).transpose(1, 2).flatten(0, 1)
            bars = across(bars, src_key_padding_mask=mask)
            h = bars.unflatten(0, (batch, window)).transpose(1, 2).flatten(0, 1)
            h = h + self.dropout(along(h)[0])
        h = self.norm(h)
        weights = torch.softmax(self.score(h).squeeze(-1), dim=1)  # over the bars
        pooled = (h * weights.unsqueeze(-1)).sum(dim=1)
        return self.head(self.dropout(pooled)).unflatten(0, (batch, symbols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cross_sections(x.unsqueeze(0))[0]


@dataclass(frozen=True)
class Network:
    """A sequence family's network: its configuration class and how it is built."""

    config: type
    build: Callable[[int, int, int, Any], nn.Module]  # (features, outputs, window, config)
    # its batch is one cross-section (the symbols at one bar): rows are not independent
    cross_sectional: bool = False


NETWORKS: dict[str, Network] = {
    "lstm": Network(LSTMConfig, lambda f, o, w, c: StackedLSTM(f, o, c)),
    "transformer": Network(TransformerConfig, WindowTransformer),
    "bilstm_attention": Network(AttentionLSTMConfig, lambda f, o, w, c: AttentionBiLSTM(f, o, c)),
    "cnn": Network(TemporalCNNConfig, lambda f, o, w, c: TemporalCNN(f, o, c)),
    "cross_asset": Network(
        CrossAssetConfig, lambda f, o, w, c: CrossAssetAttention(f, o, c), cross_sectional=True
    ),
}


def network_config(kind: str, config: Mapping[str, Any]) -> Any:
    """The typed configuration of network ``kind`` from plain values (lists become tuples, as
    JSON and MLflow return them)."""
    if kind not in NETWORKS:
        raise ValueError(f"unknown sequence model {kind!r}; choose from {', '.join(NETWORKS)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return NETWORKS[kind].config(**values)


def build_network(
    kind: str, n_features: int, n_outputs: int, window: int, config: Mapping[str, Any]
) -> nn.Module:
    return NETWORKS[kind].build(n_features, n_outputs, window, network_config(kind, config))
