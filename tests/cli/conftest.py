"""The `qtis trade` tests trade the bundled sample's bars, like the runtime's own tests."""

from tests.trading_runtime.conftest import market, market_template  # noqa: F401
