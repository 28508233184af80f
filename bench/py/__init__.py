"""Python that serves the benchmarks, not the model: probe graphs and the distilvit-style peer. Run from the
repository root, e.g. `/usr/bin/python3 -m bench.py.bench_graphs`; it imports the toolkit as `model`."""
