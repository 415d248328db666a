"""Record or check the sha256 of a fixed set of synthetic leaves.

The synthetic leaves are the demo set and the test data, and published figures were
measured on them, so a change of drawing code must not change a single byte. This
script draws every species under each option of ``generate`` and ``render_leaf`` and
writes (``--write``) or compares the hashes with ``tests/datasets/fixtures/synth_sha256.json``.
``tests/datasets/test_synth_hashes.py`` runs the same comparison.

    python tools/synth_hashes.py --write     # record from the current code
    python tools/synth_hashes.py             # compare, exit 1 on any difference
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "datasets" / "fixtures" / "synth_sha256.json"

# generate() keyword arguments per case: the CLI's options (classes, per-class, size,
# seed, disease, format), the demo's arguments (as a prefix) and the tests' fixture.
GENERATE_CASES = {
    "all14_x3_64px": {"classes": 14, "per_class": 3, "size": 64, "seed": 0},
    "all14_x3_37px_seed11_disease1": {"classes": 14, "per_class": 3, "size": 37, "seed": 11, "disease": 1.0},
    "demo_prefix_x3_96px": {"classes": 14, "per_class": 3, "size": 96, "seed": 0, "disease": 0.1},
    "all14_x2_48px_jpg_disease0": {"classes": 14, "per_class": 2, "size": 48, "seed": 5, "disease": 0.0,
                                   "image_format": "jpg"},
    "tests_leaves_fixture": {"classes": 4, "per_class": 30, "size": 48, "seed": 1},
}
# render_leaf() with each explicit background (generate() always uses "random").
RENDER_SIZE = 64
RENDER_BACKGROUNDS = ("black", "clutter", "random")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pixels(img: Image.Image) -> str:
    return _sha(f"{img.mode} {img.size}".encode() + img.tobytes())


def compute(generate, render_leaf, species_count: int) -> dict:
    """{"files": {case/relpath: sha256}, "pixels": {case/relpath: sha256 of decoded PNG pixels}}.

    File bytes depend on the PNG/JPEG encoder too; the decoded pixels of a PNG do not,
    so they are recorded as well for a machine with another Pillow.
    """
    files, pixels = {}, {}
    with tempfile.TemporaryDirectory(prefix="leafnet_synth_hashes_") as tmp:
        for case, kwargs in GENERATE_CASES.items():
            root = Path(tmp) / case
            generate(root, **kwargs)
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                key = f"{case}/{path.relative_to(root).as_posix()}"
                files[key] = _sha(path.read_bytes())
                if path.suffix == ".png":
                    with Image.open(path) as img:
                        pixels[key] = _pixels(img)
    for background in RENDER_BACKGROUNDS:
        for species in range(species_count):
            for i, disease in enumerate((0.0, 1.0)):
                img = render_leaf(species, np.random.default_rng([42, species, i]), RENDER_SIZE, background, disease)
                pixels[f"render_leaf/{background}/{species:02d}_{i}"] = _pixels(img)
    return {"files": files, "pixels": pixels}


def current() -> dict:
    """Hashes from the installed ``leafnet.datasets`` code."""
    from leafnet.datasets import SPECIES, generate, render_leaf

    return compute(generate, render_leaf, len(SPECIES))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="record the fixture from the current code")
    args = p.parse_args(argv)
    got = current()
    if args.write:
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps({"pillow": PIL.__version__, **got}, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(got['files'])} file and {len(got['pixels'])} pixel hashes to {FIXTURE}")
        return 0
    want = json.loads(FIXTURE.read_text())
    bad = [k for part in ("files", "pixels") for k in sorted(set(want[part]) | set(got[part]))
           if want[part].get(k) != got[part].get(k)]
    for k in bad:
        print(f"differs: {k}")
    print(f"{len(bad)} of {len(want['files']) + len(want['pixels'])} hashes differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
