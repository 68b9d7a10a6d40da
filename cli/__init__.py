"""The `qtis` command line: each command parses its options, calls one function of the
packages below and renders what it returns."""
