"""An exported model file (``sceneshift export``) loaded for inference with onnxruntime.

It behaves like a run (:class:`~sceneshift.networks.predictor.RunPredictor`): ``classes``,
``domain``, ``cfg``, ``sample_rate``, ``n_samples``, ``probabilities(waves)``, so ``sceneshift
predict`` and ``sceneshift evaluate`` take a ``.onnx`` file where they take a run folder. The run's
recipe and domain travel inside the file (ONNX metadata), so the file alone is the deployable
model. A features-in export (``--frontend excluded``) carries its front end's configuration; the
front end then runs here in torch and onnxruntime runs the rest.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..data.domain import Domain
from ..data.splits import iter_batches

ONNX_SUFFIX = ".onnx"


def is_onnx_file(path) -> bool:
    return Path(path).suffix.lower() == ONNX_SUFFIX and Path(path).is_file()


def read_metadata(path: str | Path) -> dict:
    """The ``sceneshift.*`` metadata of an exported file (recipe, domain, input kind, ...)."""
    import onnx
    try:
        model = onnx.load(str(path), load_external_data=False)
    except OSError:
        raise
    except Exception as e:          # onnx reports a damaged file as a protobuf DecodeError
        raise ValueError(f"{path}: not a readable ONNX model ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else 'damaged or truncated'})") from None
    meta = {p.key[len("sceneshift."):]: p.value for p in model.metadata_props if p.key.startswith("sceneshift.")}
    if "config" not in meta or "domain" not in meta:
        raise ValueError(f"{path}: not a model exported by `sceneshift export` (no sceneshift metadata)")
    return meta


class OnnxPredictor:
    def __init__(self, path: str | Path, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as e:        # an optional extra
            raise ImportError("running an exported model needs onnxruntime: pip install 'sceneshift[export]'") from e
        self.path = self.run_dir = Path(path)
        meta = read_metadata(self.path)
        self.cfg = json.loads(meta["config"])
        self.domain = Domain.from_json(json.loads(meta["domain"]))
        self.input_kind = meta.get("input", "waveform")
        self.precision = meta.get("precision", "fp32")
        self.adapted = json.loads(meta["adapted"]) if "adapted" in meta else None   # export --adapt: one device's file
        self.classes = list(self.domain.classes)
        self.sample_rate = int(self.cfg["data"]["sample_rate"])
        self.n_samples = int(round(self.cfg["data"]["clip_seconds"] * self.sample_rate))
        self.fixed_length = meta.get("fixed_length") == "true"
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.frontend = None
        if self.input_kind == "features":
            from .classifier import build_frontend
            self.frontend = build_frontend(self.cfg).eval()
        self.net = None             # no torch network: band-wise adaptation needs a run folder
        self.eval_dir = self.path.parent / f"{self.path.stem}-eval"
        self.device = torch.device("cpu")

    def inputs(self, wave: torch.Tensor) -> np.ndarray:
        if self.frontend is None:
            return wave.numpy()
        with torch.inference_mode():
            return self.frontend(wave).numpy()

    def logits(self, waves: np.ndarray, batch_size: int = 128, rows=None) -> np.ndarray:
        out = [self.session.run(None, {self.input_name: self.inputs(x)})[0] for x in iter_batches(waves, batch_size, rows)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, len(self.classes)), np.float32)

    def probabilities(self, waves: np.ndarray, batch_size: int = 128, rows=None) -> np.ndarray:
        from .predictor import softmax
        return softmax(self.logits(waves, batch_size, rows))
