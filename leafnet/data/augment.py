"""In-model augmentation: Keras layers that are active only while training."""

from __future__ import annotations

import keras
from keras import ops

from leafnet.config import AugmentConfig


@keras.saving.register_keras_serializable(package="leafnet")
class RandomCropResize(keras.layers.Layer):
    """Crop a random window covering ``1 - fraction`` .. 1 of each side and resize it back.

    Unlike ``keras.layers.RandomCrop``, the output keeps the input size and the layer
    is the identity at inference, so training and serving see the same framing.

    Args:
        fraction: largest fraction of each side that may be cut away, in [0, 1).
        seed: optional integer seed.
    """

    def __init__(self, fraction: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"`fraction` must be in [0, 1). Received: fraction={fraction}")
        self.fraction = float(fraction)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training or self.fraction == 0.0:
            return images
        shape = ops.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        scale = keras.random.uniform((batch, 1), 1.0 - self.fraction, 1.0, seed=self.seed_generator)
        offset = keras.random.uniform((batch, 2), 0.0, 1.0, seed=self.seed_generator) * (1.0 - scale)
        # Normalised boxes [y1, x1, y2, x2] for crop_and_resize.
        boxes = ops.concatenate([offset, offset + scale], axis=1)
        import tensorflow as tf

        out = tf.image.crop_and_resize(images, boxes, tf.range(batch), (height, width))
        return ops.cast(out, images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "fraction": self.fraction, "seed": self.seed}


@keras.saving.register_keras_serializable(package="leafnet")
class RandomNoise(keras.layers.Layer):
    """Additive Gaussian noise with ``stddev`` given as a fraction of the 0..255 value range.

    ``keras.layers.GaussianNoise`` only accepts stddev <= 1, i.e. it assumes 0..1 images.
    """

    def __init__(self, stddev: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= stddev <= 1.0:
            raise ValueError(f"`stddev` must be in [0, 1] (a fraction of 255). Received: stddev={stddev}")
        self.stddev = float(stddev)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training or self.stddev == 0.0:
            return images
        noise = keras.random.normal(ops.shape(images), stddev=255.0 * self.stddev, seed=self.seed_generator)
        return ops.clip(images + ops.cast(noise, images.dtype), 0.0, 255.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


def build_augmentation(cfg: AugmentConfig, seed: int | None = None) -> keras.Sequential:
    """A ``Sequential`` of the augmentation layers enabled in ``cfg`` (values 0..255).

    Args:
        cfg: augmentation settings.
        seed: base seed; each layer gets ``seed + i`` so runs are reproducible.

    Returns:
        A Sequential named ``augmentation`` (empty, i.e. the identity, if nothing is enabled).
    """
    def s(i: int) -> int | None:
        return None if seed is None else seed + i

    layers: list[keras.layers.Layer] = []
    if cfg.flip != "none":
        layers.append(keras.layers.RandomFlip(cfg.flip, seed=s(1), name="aug_flip"))
    if cfg.rotation > 0:
        layers.append(keras.layers.RandomRotation(cfg.rotation, fill_mode="reflect", seed=s(2), name="aug_rotation"))
    if cfg.zoom > 0:
        layers.append(keras.layers.RandomZoom(cfg.zoom, fill_mode="reflect", seed=s(3), name="aug_zoom"))
    if cfg.translation > 0:
        layers.append(keras.layers.RandomTranslation(cfg.translation, cfg.translation, fill_mode="reflect",
                                                     seed=s(4), name="aug_translation"))
    if cfg.crop > 0:
        layers.append(RandomCropResize(cfg.crop, seed=s(5), name="aug_crop"))
    if cfg.contrast > 0:
        layers.append(keras.layers.RandomContrast(cfg.contrast, value_range=(0, 255), seed=s(6), name="aug_contrast"))
    if cfg.brightness > 0:
        layers.append(keras.layers.RandomBrightness(cfg.brightness, value_range=(0, 255), seed=s(7), name="aug_brightness"))
    if cfg.noise > 0:
        layers.append(RandomNoise(cfg.noise, seed=s(8), name="aug_noise"))
    if cfg.randaugment > 0:
        layers.append(keras.layers.RandAugment(value_range=(0, 255), num_ops=cfg.randaugment,
                                               factor=cfg.randaugment_factor, seed=s(9), name="aug_randaugment"))
    return keras.Sequential(layers, name="augmentation")


def mix_batches(ds, mixup: float = 0.0, cutmix: float = 0.0, seed: int = 0):
    """MixUp and/or CutMix on a dataset of ``(images, one-hot labels)`` batches.

    Label-mixing augmentations change the labels, so they run in the input pipeline (with
    Keras' own ``MixUp`` / ``CutMix`` layers), not inside the model. With both enabled,
    each batch gets one of the two, chosen at random (as timm does). The soft labels work
    with every leafnet loss.

    Args:
        ds: batches of ``(float images, one-hot labels)``.
        mixup: MixUp's alpha (0: off).
        cutmix: CutMix's alpha (0: off).
        seed: seed of this epoch's draws.
    """
    import tensorflow as tf

    mixers = []
    if mixup > 0:
        mixers.append(keras.layers.MixUp(alpha=mixup, seed=seed))
    if cutmix > 0:
        mixers.append(keras.layers.CutMix(factor=cutmix, seed=seed + 1))
    if not mixers:
        return ds

    def apply(layer, x, y):
        out = layer({"images": x, "labels": y}, training=True)
        return out["images"], tf.cast(out["labels"], y.dtype)

    if len(mixers) == 1:
        return ds.map(lambda x, y: apply(mixers[0], x, y))

    def either(i, batch):
        x, y = batch
        coin = tf.random.stateless_uniform([], seed=tf.stack([tf.cast(seed, tf.int64), i]))
        return tf.cond(coin < 0.5, lambda: apply(mixers[0], x, y), lambda: apply(mixers[1], x, y))

    return ds.enumerate().map(either)
