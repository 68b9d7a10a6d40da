"""FIX 4.4 execution: a session layer over TCP, the gateway the engine trades through and an
in-process venue that simulates the other side."""
