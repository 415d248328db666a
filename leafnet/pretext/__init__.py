"""Self-supervised pretext pre-training on unlabelled images (``leafnet pretext``).

A pretext task makes labels out of the images themselves: which way an image was
rotated (:class:`~leafnet.pretext.task.Rotation`), or the colour of a square pasted on
it (:class:`~leafnet.pretext.task.Perturbation`). The classifier trained on it is a
normal leafnet run; its backbone, saved as ``backbone.keras``, is then transferred with
``leafnet fit --weights RUN``.

Example:
    >>> from leafnet.pretext import pretext
    >>> run = pretext({"data": {"data": "unlabelled/"}, "model": {"backbone": "simple-cnn", "weights": "none"}},
    ...               task="rotation")
    >>> leafnet.fit(..., **{"model.weights": str(run.root)})
"""

from __future__ import annotations


def pretext(*args, **kwargs):
    """See :func:`leafnet.pretext.run.pretext`."""
    from leafnet.pretext.run import pretext as _pretext

    return _pretext(*args, **kwargs)


__all__ = ["pretext"]
