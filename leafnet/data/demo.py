"""Alias of the demo data cache, now :mod:`leafnet.datasets.demo` (kept for one version)."""

from leafnet.datasets.demo import DEMO, DEMO_VERSION, cache_root, demo_folder, demo_path

__all__ = ["DEMO", "DEMO_VERSION", "cache_root", "demo_path", "demo_folder"]
