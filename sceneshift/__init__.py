"""sceneshift: acoustic scene classification under recording-device shift."""

__version__ = "0.1.0"
