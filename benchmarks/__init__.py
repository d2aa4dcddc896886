"""Benchmarks of lightning_lr: ratios measured side by side in one run (`make bench`)."""
