"""The execution interface: what the engine asks of a venue, whichever venue it is.

The simulator (``broker.SimulatedBroker``) and the FIX 4.4 gateway (``fix.gateway.FixGateway``)
both satisfy it and answer with the same events, so the engine cannot tell them apart.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from trading_runtime.broker import CrossSection
from trading_runtime.domain import Order
from trading_runtime.events import Event


@runtime_checkable
class Execution(Protocol):
    def submit(self, orders: list[Order], step: int) -> list[Event]:
        """Send ``orders`` (decided on bar ``step``): one accepted or rejected event each."""
        ...

    def cancel(self, client_id: str, reason: str, actor: str = "engine") -> Event | None:
        """The venue's confirmation of the cancel, or None when it does not know the order."""
        ...

    def on_bar(self, bar: CrossSection) -> list[Event]:
        """What happened to the working orders in ``bar``: fills, triggers, cancels, expiries."""
        ...

    def restore(self, orders: list[Order], steps: dict[str, int]) -> list[Event]:
        """After a restart: the journal's open orders; unacknowledged ones are sent again."""
        ...

    def observe(self, bar: CrossSection) -> None:
        """``bar`` has closed (a venue modelling its own costs may learn from it)."""
        ...

    def journaled(self) -> None:
        """Every event this venue returned so far is committed to the journal: a venue that
        must not forget them before (FIX: the incoming sequence number) may let go now."""
        ...


@runtime_checkable
class Reporting(Protocol):
    """A venue whose news arrives by itself (a broker's stream): what came since it was last
    asked, taken between bars as well as in ``on_bar``."""

    def take_updates(self, read_back: bool = False) -> list[Event]:
        """The news since the last call; ``read_back``: the open orders' states asked for too."""
        ...
