"""The numpy online feature engine that transforms.online replaced with numba kernels (issue 29),
kept unchanged as the reference its replacement must reproduce (tests/transforms/
test_online_kernels.py)."""
