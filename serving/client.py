"""A typed client of the prediction API, with timeouts and retries: what the trading runtime uses
to reach a served model. :class:`serving.predictor.Predictor` answers the same three calls in
process (for backtests), so code written against :class:`serving.predictor.Predicting` runs
against either.

Retried: connection failures, timeouts, 429 (after its Retry-After) and 5xx, with exponential
backoff, for the calls that change nothing (predict, explain, model info); a 4xx is the caller's
mistake and raises :class:`ServingError` at once with the service's message and the field it
names. The admin calls (reload, rollback) are sent once: one whose answer was lost may have been
applied, and a roll-back sent twice would go back two champions.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from serving.schemas import (
    ExplainRequest,
    ExplainResponse,
    ModelInfo,
    PredictRequest,
    PredictResponse,
)

T = TypeVar("T", bound=BaseModel)


class ServingError(RuntimeError):
    def __init__(self, status: int | None, message: str, field: str | None = None) -> None:
        where = f" (field {field})" if field else ""
        super().__init__(f"{status or 'no answer'}: {message}{where}")
        self.status, self.message, self.field = status, message, field


class ServingClient:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:3000",
        token: str | None = None,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.1,
        max_retry_wait: float = 5.0,
    ) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)
        self.retries, self.backoff, self.max_retry_wait = retries, backoff, max_retry_wait

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None, retry: bool = True) -> Any:
        """The answer's JSON; ``retry=False`` sends the request once, whatever happens."""
        last: ServingError | None = None
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(self.max_retry_wait, self.backoff * 2 ** (attempt - 1)))
            try:
                response = self._http.request(method, path, json=body)
            except httpx.TransportError as exc:  # refused, reset, timed out
                last = ServingError(None, f"{type(exc).__name__}: {exc}")
                continue
            if response.status_code < 400:
                return response.json()
            error = _error(response)
            if response.status_code == 429 or response.status_code >= 500:
                last = error
                wait = response.headers.get("retry-after")
                if wait and attempt < attempts - 1:
                    time.sleep(min(self.max_retry_wait, float(wait)))
                continue
            raise error
        raise last

    def _post(self, path: str, request: BaseModel, kind: type[T]) -> T:
        body = request.model_dump(mode="json", exclude_none=True)
        return kind.model_validate(self._call("POST", path, {"request": body}))

    def predict(self, request: PredictRequest) -> PredictResponse:
        return self._post("/predict", request, PredictResponse)

    def explain(self, request: ExplainRequest) -> ExplainResponse:
        return self._post("/explain", request, ExplainResponse)

    def info(self) -> ModelInfo:
        return ModelInfo.model_validate(self._call("GET", "/model"))

    def reload(self) -> dict[str, Any]:
        return self._call("POST", "/admin/reload", {}, retry=False)

    def rollback(self, reason: str = "rollback through the API") -> dict[str, Any]:
        return self._call("POST", "/admin/rollback", {"reason": reason}, retry=False)

    def ready(self) -> bool:
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False


def _error(response: httpx.Response) -> ServingError:
    try:
        body = response.json()
    except ValueError:
        return ServingError(response.status_code, response.text[:500])
    if isinstance(body, dict):
        return ServingError(response.status_code, str(body.get("error", body)), body.get("field"))
    return ServingError(response.status_code, str(body))
