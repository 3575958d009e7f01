"""Models for bench/sync_bench.py: one synced and one plain model with the same fields."""
