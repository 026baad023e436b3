"""Benchmarks run by ``make bench`` / ``python -m bench NAME``.

Each benchmark is a function ``run(quick: bool) -> dict[str, float | int | bool]`` returning flat
keys in the units their names say. Benchmarks are harnesses: they may drive edge and cloud
together (as separate processes or tasks), which the product packages themselves never do.
That is also why ``bench`` is not in the product wheel: it is run from a checkout, and its
command line (:mod:`bench.__main__`) lists the benchmarks by real imports.
"""
