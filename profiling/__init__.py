"""Profiling tools (``python -m profiling.<tool>``): memory-traffic accounting so far."""
