"""Typed configuration of the FIX gateway and the simulated venue (``QTIS_FIX_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FixSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QTIS_FIX_", extra="forbid")

    host: str = Field("127.0.0.1", description="the venue's address")
    port: int = Field(0, ge=0, le=65535, description="the venue's port; 0: a free one (venue)")
    sender_comp_id: str = Field("QTIS", min_length=1, description="our SenderCompID (49)")
    target_comp_id: str = Field("VENUE", min_length=1, description="the venue's CompID (56)")
    heartbeat_seconds: int = Field(30, ge=1, description="HeartBtInt (108) sent at Logon")
    answer_timeout: float = Field(
        2.0,
        gt=0,
        description="seconds to wait for a Logon, an order's first report, a"
        " cancel's answer or a bar's reports; later answers come with the next bar",
    )
    connect_timeout: float = Field(2.0, gt=0, description="seconds for the TCP connect")
    store_dir: Path = Field(
        Path(".qtis/fix"), description="per session: sequence numbers and sent messages"
    )
