"""Pure statistics, no I/O and nothing from the project: return and risk metrics under one set of
conventions, IC and intervals, significance tests and the bootstrap. Every other package uses
these instead of its own, so a number means the same wherever it is printed."""
