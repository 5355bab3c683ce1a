"""runlake's benchmarks: `python -m benchmarks` (seeded, synthesized data; never timed in tests)."""
