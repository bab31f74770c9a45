"""Stage `report` (report: the ablation across seeds; figures) and `make ablation` (experiments: a grid
of DVC experiments and one table across them)."""
