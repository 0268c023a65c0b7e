"""Workload traces (SPEC 3): the bundled real data, the BurstGPT / Azure CSV reader and the load scaling.

`load_workload(cfg, rng)` is the entry point; `python -m traces.download` fetches BurstGPT release CSVs.
"""
from traces.loader import Workload, load_workload, trace_names

__all__ = ["Workload", "load_workload", "trace_names"]
