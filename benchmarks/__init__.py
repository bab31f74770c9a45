"""Benchmarks of dcgan-lab against plain re-statements of what it replaces (see README.md here).

Not tests: they time things, so they run from `make bench`, never from pytest.
"""
