"""Request and response bodies of the prediction API (also what the Python client speaks).

A request carries either feature windows, ``(windows, bars, features)`` of raw feature values in
the order ``GET /model`` lists, or symbols and an as-of time, for which the service reads the
windows from ``features.training_set``. Values are JSON numbers (no strings or booleans) within
float32's range; ``extra`` keys are refused so a misspelt field is an error, not a silently
ignored one, and so is an explicit ``null``: leave the key out. The shapes that depend on the
model served (features per bar, bars per window) and on the settings (how many windows) are
checked by the service and published in its OpenAPI document (:mod:`serving.openapi`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, model_serializer, model_validator

Role = Literal["champion", "challenger"]
FLOAT32_MAX = 3.4028234663852886e38  # beyond it a value is inf once the model reads it
Value = Annotated[float, Strict(), Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
Bar = Annotated[list[Value], Field(min_length=1)]
Window = Annotated[list[Bar], Field(min_length=1)]
Symbol = Annotated[str, Field(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Request(_Strict):
    """A request leaves out what it does not give: dumped, it has no null to be refused."""

    @model_serializer(mode="wrap")
    def _given(self, handler) -> dict:
        return {k: v for k, v in handler(self).items() if v is not None}


class PredictRequest(_Request):
    # the fields' types are not Optional: a key is given with a value or left out
    windows: list[Window] = Field(
        None,
        min_length=1,
        description="feature windows: (windows, bars, features), oldest bar first",
    )
    symbols: list[Symbol] = Field(
        None,
        min_length=1,
        description="symbols whose latest window (up to as_of) the service looks up",
    )
    as_of: datetime = Field(None, description="window end for symbols; default: latest bar")

    @model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        if (self.windows is None) == (self.symbols is None):
            raise ValueError("give exactly one of 'windows' or 'symbols'")
        if self.as_of is not None and self.symbols is None:
            raise ValueError("'as_of' goes with 'symbols'")
        return self


class PredictResponse(_Strict):
    request_id: str
    model: str
    version: str
    role: Role = Field(description="which model answered: champion, or challenger under A/B")
    horizons: list[int]
    predictions: list[list[float]] = Field(description="(windows, horizons) forward log returns")
    symbols: list[str] | None = None
    as_of: list[datetime] | None = Field(None, description="bar each looked-up window ends at")


class ExplainRequest(_Request):
    window: Window = Field(None, description="one window: (bars, features), oldest bar first")
    symbol: Symbol = Field(
        None, description="symbol whose latest window (up to as_of) is explained"
    )
    as_of: datetime = Field(None, description="window end for symbol; default: latest bar")

    @model_validator(mode="after")
    def _one_input(self) -> ExplainRequest:
        if (self.window is None) == (self.symbol is None):
            raise ValueError("give exactly one of 'window' or 'symbol'")
        if self.as_of is not None and self.symbol is None:
            raise ValueError("'as_of' goes with 'symbol'")
        return self


class FeatureAttribution(_Strict):
    feature: str
    value: float = Field(description="the feature's value on the window's last bar")
    shap: list[float] = Field(description="contribution to each horizon's forecast")


class ExplainResponse(_Strict):
    model: str
    version: str
    method: str
    horizons: list[int]
    base_values: list[float]
    prediction: list[float]
    attributions: list[FeatureAttribution] = Field(description="by |contribution|, largest first")


class ModelCard(_Strict):
    role: Role
    model: str
    version: str
    window: int = Field(description="bars a window needs")
    input_kind: str = Field(description="windows (networks, ensemble) or features (trees)")
    features: list[str]
    horizons: list[int]
    run_id: str
    loaded_at: datetime
    trained_through: datetime | None = Field(None, description="last bar it was trained on")
    label_end: datetime | None = Field(
        None,
        description="last bar a label of its training or early stopping looked at: only later"
        " bars are out of sample",
    )
    artifact_sha256: str | None = Field(
        None, description="digest of its artifacts recorded at registration (None: not recorded)"
    )
    routes_by: str | None = Field(
        None,
        description="a fine-tuned model's grouping (symbol or sector): a request by symbols gets"
        " each symbol's fine-tuned copy, a request of raw windows the pre-trained network",
    )


class ModelInfo(_Strict):
    champion: ModelCard
    challenger: ModelCard | None
    ab_share: float = Field(description="share of /predict requests the challenger answers")
    batching: bool
    promotion: dict | None = Field(None, description="the decision that made the champion")


class ErrorBody(_Strict):
    error: str
    field: str | None = None
