"""The registered backbones: Keras applications, an AlexNet-style net and a simple CNN.

Every builder receives 0..255 RGB and puts the preprocessing its weights expect
inside the model, so callers never preprocess by hand.
"""

from __future__ import annotations

import keras
from keras import layers

from leafnet.models.parts import PREPROCESS_PREFIX
from leafnet.models.registry import BackboneSpec, HubFamily, register_backbone, register_hub_family

A = keras.applications

# Preprocessing layers that keras.applications adds itself, and leafnet's own.
_STEM_PRE = rf"({PREPROCESS_PREFIX}|rescaling|normalization)"


def _application(fn, **kw):
    def build(x, weights):
        model = fn(include_top=False, weights=weights, input_tensor=x, **kw)
        return model.output
    return build


def _staged_blocks(n: int, last_extra: str, stem: str) -> tuple[tuple[str, str], ...]:
    """Blocks ``block1..blockN`` matched by ``block{i}[a-z]_`` (EfficientNet naming)."""
    blocks = [("stem", rf"^({stem}|{_STEM_PRE})")]
    for i in range(1, n + 1):
        rx = rf"^block{i}[a-z]_"
        if i == n:
            rx = rf"^(block{i}[a-z]_|{last_extra})"
        blocks.append((f"block{i}", rx))
    return tuple(blocks)


_EFFICIENTNET = [
    ("b0", A.EfficientNetB0, 224), ("b1", A.EfficientNetB1, 240), ("b2", A.EfficientNetB2, 260),
    ("b3", A.EfficientNetB3, 300), ("b4", A.EfficientNetB4, 380), ("b5", A.EfficientNetB5, 456),
    ("b6", A.EfficientNetB6, 528), ("b7", A.EfficientNetB7, 600),
]
for short, fn, size in _EFFICIENTNET:
    register_backbone(BackboneSpec(
        name=f"efficientnet-{short}", builder=_application(fn), default_size=size,
        blocks=_staged_blocks(7, "top_", "stem_"), aliases=(short, f"efficientnet{short}", fn.__name__),
        family="EfficientNet (Tan & Le 2019), 7 stages + top"))

_EFFICIENTNET_V2 = [
    ("b0", A.EfficientNetV2B0, 224), ("b1", A.EfficientNetV2B1, 240), ("b2", A.EfficientNetV2B2, 260),
    ("b3", A.EfficientNetV2B3, 300), ("s", A.EfficientNetV2S, 384),
]
for short, fn, size in _EFFICIENTNET_V2:
    register_backbone(BackboneSpec(
        name=f"efficientnetv2-{short}", builder=_application(fn, include_preprocessing=True), default_size=size,
        blocks=_staged_blocks(6, "top_", "stem_"), aliases=(f"v2-{short}", f"v2{short}", fn.__name__),
        family="EfficientNetV2 (Tan & Le 2021), 6 stages + top"))


def _resnet50v2(x, weights):
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name=PREPROCESS_PREFIX + "scale")(x)
    return A.ResNet50V2(include_top=False, weights=weights, input_tensor=x).output


register_backbone(BackboneSpec(
    name="resnet50v2", builder=_resnet50v2, default_size=224,
    blocks=(("stem", rf"^(conv1_|pool1_|{_STEM_PRE})"), ("conv2", r"^conv2_"), ("conv3", r"^conv3_"),
            ("conv4", r"^conv4_"), ("conv5", r"^(conv5_|post_)")),
    aliases=("resnet50", "ResNet50V2"), family="ResNet-50 v2 (He et al. 2016), 4 stages"))


def _mobilenet_blocks(n: int) -> tuple[tuple[str, str], ...]:
    # Keras names the inverted-residual blocks expanded_conv_, expanded_conv_1_, ...
    blocks = [("stem", rf"^(conv|conv_bn|{_STEM_PRE})$|^{_STEM_PRE}")]
    for i in range(n):
        rx = r"^expanded_conv_(?!\d)" if i == 0 else rf"^expanded_conv_{i}_"
        if i == n - 1:
            rx = rf"({rx}|^conv_1)"
        blocks.append((f"block{i + 1}", rx))
    return tuple(blocks)


register_backbone(BackboneSpec(
    name="mobilenetv3-small", builder=_application(A.MobileNetV3Small), default_size=224,
    blocks=_mobilenet_blocks(11), aliases=("mobilenetv3small", "MobileNetV3Small"),
    family="MobileNetV3 Small (Howard et al. 2019), 11 blocks"))
register_backbone(BackboneSpec(
    name="mobilenetv3-large", builder=_application(A.MobileNetV3Large), default_size=224,
    blocks=_mobilenet_blocks(15), aliases=("mobilenetv3large", "MobileNetV3Large"),
    family="MobileNetV3 Large (Howard et al. 2019), 15 blocks"))


# ImageNet statistics on the 0..1 scale (torchvision's), for the AlexNet-style net.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_VAR = tuple(s * s for s in (0.229, 0.224, 0.225))


def _alexnet(x, weights):
    """AlexNet as torchvision lays it out (Krizhevsky et al. 2012, one-GPU variant).

    Five conv blocks, ``conv1``..``conv5``; ``same`` pooling so that small inputs work.
    """
    x = layers.Rescaling(1.0 / 255.0, name=PREPROCESS_PREFIX + "scale")(x)
    x = layers.Normalization(mean=_IMAGENET_MEAN, variance=_IMAGENET_VAR, name=PREPROCESS_PREFIX + "normalize")(x)
    spec = [(64, 11, 4, True), (192, 5, 1, True), (384, 3, 1, False), (256, 3, 1, False), (256, 3, 1, True)]
    for i, (filters, kernel, stride, pool) in enumerate(spec, start=1):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", name=f"conv{i}_conv")(x)
        x = layers.ReLU(name=f"conv{i}_relu")(x)
        if pool:
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"conv{i}_pool")(x)
    return x


register_backbone(BackboneSpec(
    name="alexnet", builder=_alexnet, default_size=224, imagenet=False,
    blocks=(("stem", rf"^{_STEM_PRE}"),) + tuple((f"conv{i}", rf"^conv{i}_") for i in range(1, 6)),
    aliases=("alexnet-style",), family="AlexNet-style, 5 conv blocks (torchvision layout)"))


def _simple_cnn(x, weights):
    """Five blocks of Conv3x3 + BatchNorm + ReLU + MaxPool: the usual course baseline."""
    x = layers.Rescaling(1.0 / 255.0, name=PREPROCESS_PREFIX + "scale")(x)
    for i, filters in enumerate((32, 64, 128, 256, 256), start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv")(x)
        # momentum 0.9 (PyTorch's default): with Keras' 0.99 the moving statistics of a
        # net trained from scratch on a small folder are still near their initial values
        # after hundreds of steps, and validation runs at chance while training learns.
        x = layers.BatchNormalization(momentum=0.9, name=f"block{i}_bn")(x)
        x = layers.ReLU(name=f"block{i}_relu")(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"block{i}_pool")(x)
    return x


register_backbone(BackboneSpec(
    name="simple-cnn", builder=_simple_cnn, default_size=128, imagenet=False,
    blocks=(("stem", rf"^{_STEM_PRE}"),) + tuple((f"block{i}", rf"^block{i}_") for i in range(1, 6)),
    aliases=("simplecnn", "cnn"), family="5 x (Conv3x3-BN-ReLU-MaxPool), trained from scratch"))


# keras-hub Backbone classes that --weights hub:PRESET can build (their timm converter covers
# these families); layer names as keras-hub 0.32 builds them.
for _family in (
    HubFamily("EfficientNetBackbone", "hub-efficientnet", stem=r"stem_", stage=r"^block(\d+)[a-z]_", block="block{}",
              last_extra=r"^top_", family="EfficientNet"),
    HubFamily("ResNetBackbone", "hub-resnet", stem=r"(conv1_|pool1_)", stage=r"^stack(\d+)_", block="stack{}",
              last_extra=r"^post_", family="ResNet"),
    HubFamily("DenseNetBackbone", "hub-densenet", stem=r"(conv1_|pool1)", stage=r"^stack(\d+)_", block="stack{}",
              stage_extra=r"^transition{}_", last_extra=r"^(bn|relu)$", family="DenseNet"),
    HubFamily("VGGBackbone", "hub-vgg", stem=r"input_", stage=r"^block(\d+)_", block="block{}", family="VGG"),
    HubFamily("CSPNetBackbone", "hub-cspnet", stem=r"csp_stem_", stage=r"^stage_(\d+)_", block="stage{}",
              family="CSPNet / CSPDarkNet"),
    HubFamily("MobileNetBackbone", "hub-mobilenet", stem=r"(input_|activation(_\d+)?$)", stage=r"^block_(\d+)_",
              block="block{}", last_extra=r"^(output_|num_features)", family="MobileNet v3"),
):
    register_hub_family(_family)
