"""Front ends: waveform -> time-frequency tensor, as torch modules that run on any device and export."""
from .logmel import LogMel, deltas

FRONTENDS = {"logmel": LogMel}


def create_frontend(cfg: dict):
    cfg = dict(cfg)
    name = cfg.pop("name", "logmel")
    if name not in FRONTENDS:
        raise ValueError(f"frontend.name: unknown front end {name!r}; available: {', '.join(FRONTENDS)}")
    return FRONTENDS[name](**cfg)


__all__ = ["LogMel", "deltas", "create_frontend", "FRONTENDS"]
