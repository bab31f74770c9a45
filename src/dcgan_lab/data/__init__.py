"""Stage `prepare` (sources -> prepare) and what later stages read of its output (splits)."""
