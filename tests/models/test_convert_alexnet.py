"""tools/convert_torchvision_alexnet.py against torch, on a randomly initialised AlexNet.

The torchvision AlexNet layout is written here by hand in torch (no torchvision needed).
leafnet's AlexNet-style net pads ``same``: conv2..conv5 (stride 1) pad exactly as
torchvision does, so torch's own modules are the reference for them; conv1 (11x11,
stride 4) and the max-pools are run with leafnet's padding on torch's weights.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

TOOL = Path(__file__).resolve().parents[2] / "tools" / "convert_torchvision_alexnet.py"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def tool():
    spec = importlib.util.spec_from_file_location("convert_torchvision_alexnet", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TorchvisionAlexNet(nn.Module):
    """torchvision.models.AlexNet's layout and parameter names."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, num_classes))


def same_pad(n, k, s):
    """Keras' ``same`` padding (left/top, right/bottom) for size n, kernel k, stride s."""
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def pool_same(x):
    lo, hi = same_pad(x.shape[-1], 3, 2)
    return F.max_pool2d(F.pad(x, (lo, hi, lo, hi), value=-math.inf), 3, 2)


def torch_features(net, images):
    """The torchvision net's convolutions, under leafnet's geometry: NHWC 0..255 in, NHWC out."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2) / 255.0
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    f = net.features
    lo, hi = same_pad(x.shape[-1], 11, 4)
    x = pool_same(F.relu(F.conv2d(F.pad(x, (lo, hi, lo, hi)), f[0].weight, f[0].bias, stride=4)))
    x = pool_same(F.relu(f[3](x)))
    x = F.relu(f[10](F.relu(f[8](F.relu(f[6](x))))))
    return pool_same(x).permute(0, 2, 3, 1).detach().numpy()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    torch.manual_seed(0)
    net = TorchvisionAlexNet().eval()
    folder = tmp_path_factory.mktemp("alexnet")
    torch.save(net.state_dict(), folder / "alexnet.pth")
    out = folder / "alexnet.keras"
    assert tool().main([str(folder / "alexnet.pth"), "--out", str(out), "--image-size", "64"]) == 0
    return net, out


def test_converted_backbone_matches_torch(converted):
    import keras

    from leafnet.models.weights import load_backbone_file

    net, path = converted
    backbone, info = load_backbone_file(path)
    assert (info["backbone"], info["image_size"]) == ("alexnet", 64)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    got = keras.ops.convert_to_numpy(backbone(images))
    want = torch_features(net, images)
    assert got.shape == want.shape == (2, 2, 2, 256)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # conv1 kernels: torch OIHW -> Keras HWIO
    k = backbone.get_layer("conv1_conv").kernel
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(k)[2, 7, 1, 5], net.features[0].weight[5, 1, 2, 7].item())


def test_converted_file_is_accepted_by_weights(converted):
    from leafnet.config import ModelConfig
    from leafnet.models.classifier import build_classifier
    from leafnet.models.registry import get_backbone
    from leafnet.models.weights import load_backbone_weights

    net, path = converted
    spec = get_backbone("alexnet")
    model = build_classifier(spec, 4, 32, ModelConfig(weights="none", feature_layer="conv4_relu", mlp_units=16))
    assert load_backbone_weights(model, spec, path) == 4  # conv1..conv4 under the cut
    np.testing.assert_array_equal(model.get_layer("conv4_conv").get_weights()[1], net.features[8].bias.detach().numpy())


def test_a_state_dict_of_another_net_is_refused(tmp_path, capsys):
    torch.save(nn.Sequential(nn.Conv2d(3, 8, 3)).state_dict(), tmp_path / "other.pth")
    assert tool().main([str(tmp_path / "other.pth"), "--out", str(tmp_path / "x.keras")]) == 2
    err = capsys.readouterr().err
    assert "error: not a torchvision AlexNet state dict: no features.0.weight" in err and "keys: 0.weight" in err
    assert not (tmp_path / "x.keras").exists()
