"""Benchmarks for strongroom.

``bench.harness`` holds the reusable pieces (load generation, server process control,
an OpenBao launcher, interleaving and reporting); each ``bench/*.py`` script is one benchmark.
"""
