"""Alpaca: the broker adapter the engine trades through (``execution``) and a local stand-in
market (``standin``) that speaks the subset of Alpaca's REST and WebSocket protocols alpaca-py
uses, for tests and the demo."""
