"""The embedded demo data: synthetic leaves, generated once into a cache folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from leafnet import console

# Changing these changes the demo set: bump the version so old caches are not reused.
DEMO = {"classes": 14, "per_class": 100, "size": 96, "seed": 0, "disease": 0.1}
DEMO_VERSION = "v1"


def cache_root() -> Path:
    """``$LEAFNET_CACHE`` or ``~/.cache/leafnet``."""
    return Path(os.environ.get("LEAFNET_CACHE") or Path.home() / ".cache" / "leafnet")


def demo_path() -> Path:
    """Where the demo leaves are (or will be) generated."""
    return cache_root() / f"demo-leaves-{DEMO_VERSION}"


def demo_folder(progress: bool = True) -> Path:
    """The demo leaves folder, generated on first use (atomically: a killed generation leaves nothing)."""
    target = demo_path()
    if target.is_dir():
        return target
    from leafnet.datasets.leaves import generate

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-leaves-", dir=target.parent))
    total = DEMO["classes"] * DEMO["per_class"]
    if progress:
        console.info(f"generating the demo leaves ({total} images) into {target}")
    try:
        generate(tmp, **DEMO)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.is_dir():  # another process may have won the race
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
