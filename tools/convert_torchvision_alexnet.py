"""Convert a torchvision AlexNet state dict into leafnet AlexNet-style backbone weights.

    pip install torch==2.13.0          # CPU is enough; torchvision is not needed
    python tools/convert_torchvision_alexnet.py alexnet-owt-7be5be79.pth --out alexnet.keras
    leafnet fit --data leaves/ --backbone alexnet --weights alexnet.keras --feature-layer conv4_relu

The five convolutions ``features.0/3/6/8/10`` become leafnet's ``conv1_conv`` ..
``conv5_conv`` (kernels OIHW -> HWIO). Both nets take RGB normalised with the ImageNet
mean and std; leafnet does that inside the model on 0..255 input. The classifier
(``classifier.1/4/6``) is not converted: leafnet's MLP head is trained per task, and
torchvision flattens channel-first after a 6x6 adaptive pooling that leafnet's backbone
does not have.

Geometry: leafnet's AlexNet-style net pads ``same`` (so 32 px images work) where
torchvision pads 2/2/1/1/1 and pools without padding, so at 224 px the feature maps are
56/28/14/14/7 wide rather than 55/27/13/13/6. The weights are exact; each output is the
torchvision convolution applied with leafnet's padding (tests/models/test_convert_alexnet.py
checks it against torch).

The output is a ``backbone.keras`` file (:func:`leafnet.models.weights.save_backbone`),
accepted by ``--weights``. torch is needed only here, never by leafnet itself.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# torchvision AlexNet's feature indices of the five convolutions, in order.
CONVS = {"features.0": "conv1_conv", "features.3": "conv2_conv", "features.6": "conv3_conv",
         "features.8": "conv4_conv", "features.10": "conv5_conv"}


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a torch state-dict file as float32 arrays (``module.`` prefixes dropped)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k.removeprefix("module."): v.detach().cpu().numpy().astype(np.float32) for k, v in state.items()}


def convert_state_dict(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """``{leafnet layer: [kernel HWIO, bias]}`` from torchvision AlexNet tensors.

    Raises:
        ValueError: a convolution is missing or not shaped like AlexNet's.
    """
    expected = {"features.0": (64, 3, 11, 11), "features.3": (192, 64, 5, 5), "features.6": (384, 192, 3, 3),
                "features.8": (256, 384, 3, 3), "features.10": (256, 256, 3, 3)}
    out = {}
    for key, layer in CONVS.items():
        w, b = state.get(f"{key}.weight"), state.get(f"{key}.bias")
        if w is None or b is None:
            raise ValueError(f"not a torchvision AlexNet state dict: no {key}.weight / {key}.bias "
                             f"(keys: {', '.join(list(state)[:6])}, ...)")
        if tuple(w.shape) != expected[key]:
            raise ValueError(f"{key}.weight has shape {tuple(w.shape)}; torchvision AlexNet's is {expected[key]}")
        out[layer] = [np.ascontiguousarray(w.transpose(2, 3, 1, 0)), b]
    return out


def build_alexnet(image_size: int, weights: dict[str, list[np.ndarray]] | None = None):
    """``(leafnet AlexNet-style classifier without augmentation, its spec)``, convolutions set."""
    from leafnet.config import ModelConfig
    from leafnet.models.classifier import build_classifier
    from leafnet.models.registry import get_backbone

    spec = get_backbone("alexnet")
    model = build_classifier(spec, 2, image_size, ModelConfig(weights="none"), augment_cfg=None)
    for layer, arrays in (weights or {}).items():
        model.get_layer(layer).set_weights(arrays)
    return model, spec


def convert(src: str | os.PathLike, out: str | os.PathLike, image_size: int = 224) -> Path:
    """Convert ``src`` (a torchvision AlexNet state dict) into a leafnet ``backbone.keras`` at ``out``."""
    from leafnet.models.weights import save_backbone

    model, spec = build_alexnet(image_size, convert_state_dict(read_state_dict(src)))
    save_backbone(model, spec, image_size, out, info={"source": f"torchvision AlexNet state dict {Path(src).name}"})
    return Path(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("state_dict", help="torchvision AlexNet state dict (.pth), e.g. alexnet-owt-7be5be79.pth")
    p.add_argument("--out", default="alexnet_backbone.keras", help="backbone file to write (.keras)")
    p.add_argument("--image-size", type=int, default=224, help="input size recorded in the file")
    args = p.parse_args(argv)
    try:
        path = convert(args.state_dict, args.out, args.image_size)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} (leafnet alexnet backbone, conv1..conv5); use it with --backbone alexnet --weights {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
