"""Front ends: waveform -> time-frequency tensor, as torch modules that run on any device and export.

A front end takes ``(batch, samples)`` and returns ``(batch, channels, mel bands, frames)``; it
exposes ``channels`` so the backbone after it is built with the right input width. The sample
rate is not a front-end option: it is injected from ``data.sample_rate``, the one sample rate of
a recipe.
"""
from ..registry import Registry

FRONTENDS = Registry("frontend", __name__, injected=("sample_rate",),
                     injected_from={"sample_rate": "data.sample_rate (one sample rate per recipe)"})

__all__ = ["FRONTENDS"]
