"""Device augmentations: spectrum correction and reverberation + compression (seed 003), and
device impulse responses (DIR, CPJKU DCASE 2023-2025).

All turn source-device (``a``) clips into clips that sound as if another device recorded them.

``spectrum_correction`` (Nguyen et al. 2020, used as augmentation by Hu et al.): ``fit`` measures
the mean STFT magnitude spectrum of every training device; the reference spectrum is the mean of
the non-source devices' spectra (each device weighs the same, however many clips it has: every
device's ratio is computed in its own pass, unlike the authors' loop that left all but one at
zero). A source clip is corrected by multiplying each STFT frame by ``reference / source``. The
ratio is formed as ``(ref + eps) / (src + eps)`` and clipped to ``+-max_gain_db``, so an empty
bin (``|A| = 0``) can never divide by zero or blow up.

``reverb_drc`` convolves a clip with one of the real room impulse responses in
``shared/data/rooms`` (MARDY at 48 kHz and REVERB at 16 kHz, resampled to the run's rate, aligned
on their direct path, cut to ``max_ir_seconds``), then applies dynamic range compression: a
10-ms frame envelope, gain reduction ``(level - threshold) * (1 - 1/ratio)`` above the threshold,
smoothed over ``smooth_ms``. The threshold is drawn relative to the clip's loudest frame, so a
quiet recording is compressed as well as a loud one. Impulse response, threshold and ratio are
drawn per clip; the output keeps the input's RMS level.

``device_ir`` (Morocutti et al. 2023, "Device-robust ASC via impulse response augmentation")
convolves a source-device clip with a microphone impulse response drawn per clip from a folder
(default: the 50 MicIRP responses in ``shared/data/micirp``), keeping the clip's RMS level.
**Leakage guard**: urban-mobile built its devices from those same responses, and the run's
domain (``devices.json``) names the response behind each device. Training on a response that
built an evaluation device would test on a device the model has heard, so every such response
is refused with an error naming it and the device, whether it is found by file name or, under
another name, by its content (compared with the named response's file where that is readable).
``exclude_dataset_devices: true`` (the default) leaves those responses out instead, and says
how many were left.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.irs import impulse_response_files, load_impulse_responses
from ..data.splits import iter_batches
from . import AUGMENTATIONS
from .base import Augmentation


def mean_spectrum(waves, rows: np.ndarray, n_fft: int, hop: int, chunk: int = 64) -> torch.Tensor:
    """Mean STFT magnitude ``(n_fft // 2 + 1,)`` over the frames of ``waves[rows]``."""
    window = torch.hann_window(n_fft)
    total, frames = torch.zeros(n_fft // 2 + 1, dtype=torch.float64), 0
    for x in iter_batches(waves, chunk, np.sort(rows)):
        mag = torch.stft(x, n_fft, hop, window=window, return_complex=True).abs()
        total += mag.sum(dim=(0, 2)).double()
        frames += mag.shape[0] * mag.shape[2]
    return (total / max(frames, 1)).float()


@AUGMENTATIONS.register
class SpectrumCorrection(Augmentation):
    name, stage = "spectrum_correction", "wave"

    def __init__(self, n_fft: int = 1024, hop_length: int = 256, max_gain_db: float = 30.0, source_only: bool = True,
                 **kw):
        super().__init__(source_only=source_only, **kw)     # a signature default: the registry fills defaults in
        if n_fft < 16 or hop_length < 1:
            raise ValueError(f"spectrum_correction: bad n_fft/hop_length ({n_fft}, {hop_length})")
        self.n_fft, self.hop, self.max_gain_db = int(n_fft), int(hop_length), float(max_gain_db)
        self.register_buffer("ratio", torch.ones(self.n_fft // 2 + 1), persistent=False)
        self.register_buffer("reference", torch.zeros(0), persistent=False)
        self.register_buffer("device_spectra", torch.zeros(0), persistent=False)
        self.fitted = False

    def fit(self, train_data):
        """Per-device mean spectra of the training split; reference = mean of the non-source devices."""
        names = list(self.run_domain.devices) if self.run_domain is not None else []
        n_dev = len(names) or int(train_data.devices.max()) + 1
        spectra, present = torch.zeros(n_dev, self.n_fft // 2 + 1), []
        for d in range(n_dev):
            rows = np.flatnonzero(train_data.devices == d)
            if len(rows):
                spectra[d] = mean_spectrum(train_data.waves, rows, self.n_fft, self.hop)
                present.append(d)
        others = [d for d in present if d != self.source_index]
        if self.source_index not in present or not others:
            source = self.run_domain.source if self.run_domain is not None else None
            raise ValueError(f"spectrum_correction needs training clips of the source device ({source}) and of at "
                             f"least one other device (devices with clips: "
                             f"{', '.join(names[d] if names else str(d) for d in present)})")
        self.set_spectra(spectra[self.source_index], spectra[others].mean(dim=0), spectra)

    def set_spectra(self, source: torch.Tensor, reference: torch.Tensor, device_spectra: torch.Tensor | None = None):
        eps = 1e-6 * float(reference.abs().max().clamp_min(1e-12))
        limit = 10 ** (self.max_gain_db / 20)
        self.ratio = ((reference + eps) / (source + eps)).clamp(1 / limit, limit).float()
        self.reference = reference.float()
        self.device_spectra = device_spectra.float() if device_spectra is not None else torch.zeros(0)
        self.fitted = True

    def transform(self, x, target):
        if not self.fitted:
            raise RuntimeError("spectrum_correction has not been fitted: call fit(train_data) first")
        window = torch.hann_window(self.n_fft, device=x.device)
        spec = torch.stft(x.float(), self.n_fft, self.hop, window=window, return_complex=True)
        spec = spec * self.ratio.to(x.device)[None, :, None]
        return torch.istft(spec, self.n_fft, self.hop, window=window, length=x.shape[-1])


# The frame-envelope machinery of a compressor, shared with the simulated devices of
# ``sceneshift devices simulate`` (sceneshift/augment/simulate.py), which call it from numpy with their own
# gain smoothing (attack/release) and thresholds (absolute, at their working level).

def frame_levels_db(x: torch.Tensor, frame: int) -> torch.Tensor:
    """The level (dB of the mean square) of each row ``(B, samples)`` in ``frame``-sample frames
    ``(B, frames)``; the last frame is zero-padded."""
    frames = F.pad(x, (0, (-x.shape[-1]) % frame)).view(x.shape[0], -1, frame)
    return 10 * torch.log10(frames.pow(2).mean(-1).clamp_min(1e-12))


def compression_db(level_db, threshold_db, ratio):
    """A compressor's static curve: the gain (dB, <= 0) for a level ``threshold_db`` or more above it."""
    return -(level_db - threshold_db).clamp_min(0) * (1 - 1 / ratio)


def apply_frame_gain(x: torch.Tensor, gain_db: torch.Tensor, frame: int) -> torch.Tensor:
    """``x (B, samples)`` times a gain given per frame ``(B, frames)`` in dB, interpolated linearly
    between frame centres, so a gain change never clicks at a frame edge."""
    gain = F.interpolate((10 ** (gain_db / 20))[:, None], size=gain_db.shape[1] * frame, mode="linear",
                         align_corners=False)[:, 0, :x.shape[-1]]
    return x * gain


def compress(x: torch.Tensor, threshold_db: torch.Tensor, ratio: torch.Tensor, frame: int, smooth: int) -> torch.Tensor:
    """Dynamic range compression of each row; ``threshold_db`` is relative to the row's loudest frame."""
    level = frame_levels_db(x, frame)                                                       # (B, frames)
    thr = level.amax(dim=1, keepdim=True) + threshold_db[:, None]
    gain_db = compression_db(level, thr, ratio[:, None])
    if smooth > 1:
        gain_db = F.avg_pool1d(F.pad(gain_db[:, None], (smooth // 2, smooth - 1 - smooth // 2), mode="replicate"),
                               smooth, stride=1)[:, 0]
    return apply_frame_gain(x, gain_db, frame)


@AUGMENTATIONS.register
class ReverbDRC(Augmentation):
    name, stage = "reverb_drc", "wave"

    def __init__(self, rooms: str | None = None, max_ir_seconds: float = 1.0, threshold_db: tuple = (-25.0, -5.0),
                 ratio: tuple = (2.0, 8.0), frame_ms: float = 10.0, smooth_ms: float = 50.0, source_only: bool = True,
                 **kw):
        super().__init__(source_only=source_only, **kw)
        if len(threshold_db) != 2 or len(ratio) != 2 or not 1 <= ratio[0] <= ratio[1]:
            raise ValueError(f"reverb_drc: threshold_db and ratio are [low, high] ranges with 1 <= ratio "
                             f"(got {threshold_db}, {ratio})")
        self.rooms, self.max_ir_seconds = rooms, float(max_ir_seconds)
        self.threshold_db, self.ratio_range = tuple(map(float, threshold_db)), tuple(map(float, ratio))
        self.frame = max(1, int(frame_ms * self.sample_rate / 1000))
        self.smooth = max(1, int(round(smooth_ms / frame_ms)))
        self.bank: torch.Tensor | None = None

    def room_folder(self) -> Path:
        if self.rooms:
            return Path(self.rooms).expanduser()
        from ..paths import shared_dir
        try:
            return shared_dir() / "data" / "rooms"
        except FileNotFoundError as e:
            raise FileNotFoundError(f"augment reverb_drc: no rooms folder named (rooms: FOLDER of room impulse "
                                    f"responses) and the default one is missing: {e}") from None

    def set_bank(self, bank: torch.Tensor):
        """Use these impulse responses ``(n, samples)`` (tests; other rooms)."""
        self.bank = bank.float()

    def transform(self, x, target):
        if self.bank is None:
            self.set_bank(torch.from_numpy(load_impulse_responses(self.room_folder(), self.sample_rate,
                                                                  self.max_ir_seconds, "reverb_drc.rooms")))
        n, length = x.shape[0], x.shape[-1]
        pick = torch.randint(len(self.bank), (n,), generator=self.generator)
        thr = self.uniform(n, *self.threshold_db).to(x.device)
        ratio = self.uniform(n, *self.ratio_range).to(x.device)
        out = compress(convolve(x, self.bank[pick].to(x.device)), thr, ratio, self.frame, self.smooth)
        return keep_level(out, x)


def convolve(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Each row of ``x (n, samples)`` convolved with the same row of ``h (n, taps)``, cut to ``x``'s length."""
    length = x.shape[-1]
    size = 1 << int(np.ceil(np.log2(length + h.shape[-1] - 1)))
    return torch.fft.irfft(torch.fft.rfft(x.float(), size) * torch.fft.rfft(h.float(), size), size)[:, :length]


def keep_level(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``out`` rescaled to the RMS level of ``x`` (row by row), so loudness does not become a cue."""
    rms_in = x.float().pow(2).mean(1, keepdim=True).sqrt()
    return out * rms_in / out.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-8)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leaked_responses(files: list[Path], device_irs: dict[str, str], reference_folder: Path | None) -> dict[Path, str]:
    """The files among ``files`` that built one of the dataset's devices: ``{file: device}``.

    Matched by file name, and by content against the named responses in ``reference_folder``
    (the folder the dataset was built from), so a renamed copy is caught too.
    """
    by_name = {name: dev for dev, name in device_irs.items()}
    by_digest = {}
    if reference_folder is not None:
        for name, dev in by_name.items():
            ref = reference_folder / name
            if ref.is_file():
                by_digest[_digest(ref)] = dev
    leaked = {}
    for f in files:
        if f.name in by_name:
            leaked[f] = by_name[f.name]
        elif by_digest and _digest(f) in by_digest:
            leaked[f] = by_digest[_digest(f)]
    return leaked


@AUGMENTATIONS.register
class DeviceIR(Augmentation):
    name, stage = "device_ir", "wave"

    def __init__(self, folder: str | None = None, exclude_dataset_devices: bool = True, max_ir_seconds: float = 0.5,
                 p: float = 0.6, source_only: bool = True, **kw):
        super().__init__(p=p, source_only=source_only, **kw)
        self.max_ir_seconds = float(max_ir_seconds)
        default = self.default_folder(required=not folder)
        self.folder = Path(folder).expanduser() if folder else default
        files = impulse_response_files(self.folder, "device_ir.folder")
        device_irs = dict(self.run_domain.device_irs) if self.run_domain is not None else {}
        leaked = leaked_responses(files, device_irs, default)
        if leaked and not exclude_dataset_devices:
            named = ", ".join(f"{f.name} (device {dev})" for f, dev in sorted(leaked.items()))
            raise ValueError(f"device_ir: {self.folder} holds impulse responses that built devices of the dataset "
                             f"this run trains and is evaluated on: {named}. Training on them would leak the test "
                             "devices; remove them or set device_ir.exclude_dataset_devices: true")
        self.files = [f for f in files if f not in leaked]
        self.excluded = sorted(f.name for f in leaked)
        if not self.files:
            raise ValueError(f"device_ir: every impulse response in {self.folder} built a device of the dataset; "
                             "nothing is left to train on")
        self.bank: torch.Tensor | None = None

    @staticmethod
    def default_folder(required: bool) -> Path | None:
        """shared/data/micirp: the default responses, and the reference the leakage guard compares with."""
        from ..paths import shared_dir
        try:
            return shared_dir() / "data" / "micirp"
        except FileNotFoundError:
            if required:
                raise
            return None

    def set_bank(self, bank: torch.Tensor):
        """Use these impulse responses ``(n, samples)`` (tests; other microphones)."""
        self.bank = bank.float()

    def transform(self, x, target):
        if self.bank is None:
            self.set_bank(torch.from_numpy(load_impulse_responses(self.folder, self.sample_rate, self.max_ir_seconds,
                                                                  "device_ir.folder", files=self.files)))
        pick = torch.randint(len(self.bank), (x.shape[0],), generator=self.generator)
        return keep_level(convolve(x, self.bank[pick].to(x.device)), x)
