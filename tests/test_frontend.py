"""The torch log-mel front end against librosa on real clips."""
import librosa
import numpy as np
import pytest
import torch

from sceneshift.data.audio import load_audio
from sceneshift.frontend.logmel import LogMel, deltas


@pytest.fixture(scope="module")
def clips(shared_dir):
    root = shared_dir / "data/urbansound8k-16k/audio/fold1"
    return [load_audio(p, 16000) for p in sorted(root.glob("*.flac"))[:3]]


@pytest.mark.parametrize("kw", [
    dict(n_fft=1024, hop_length=320, n_mels=64),
    dict(n_fft=2048, hop_length=1024, n_mels=128, window="hamming", htk=True, mel_norm=None),
    dict(n_fft=512, hop_length=160, win_length=400, n_mels=40, fmin=50.0, fmax=7000.0),
])
def test_logmel_matches_librosa(clips, kw):
    fe = LogMel(sample_rate=16000, **kw)
    for y in clips:
        ours = fe(torch.from_numpy(y)[None])[0, 0].numpy()
        ref = librosa.feature.melspectrogram(
            y=y, sr=16000, n_fft=kw["n_fft"], hop_length=kw["hop_length"], win_length=kw.get("win_length"),
            window=kw.get("window", "hann"), n_mels=kw["n_mels"], fmin=kw.get("fmin", 0.0), fmax=kw.get("fmax"),
            htk=kw.get("htk", False), norm=kw.get("mel_norm", "slaney"), pad_mode="constant")
        ref = librosa.power_to_db(ref, ref=1.0, amin=1e-10, top_db=None)
        assert ours.shape == ref.shape
        assert np.max(np.abs(ours - ref)) < 0.01      # dB


def test_deltas_match_librosa(clips):
    fe = LogMel(n_deltas=2, delta_width=9)
    x = fe(torch.from_numpy(clips[0])[None])[0].numpy()
    d1 = librosa.feature.delta(x[0], width=9, order=1)
    assert np.max(np.abs(x[1] - d1)) < 1e-3
    assert np.max(np.abs(x[2] - librosa.feature.delta(d1, width=9, order=1))) < 1e-3


def test_valid_deltas_drop_frames_and_minmax(clips):
    fe = LogMel(n_fft=1024, hop_length=320, n_deltas=2, delta_width=5, delta_mode="valid", normalize="minmax")
    x = fe(torch.from_numpy(clips[0])[None])
    frames = 1 + len(clips[0]) // 320
    assert x.shape == (1, 3, 64, frames - 8)          # two width-5 deltas without padding, as in Hu et al.
    assert torch.allclose(x.amin(dim=(2, 3)), torch.zeros(1, 3)) and torch.allclose(x.amax(dim=(2, 3)), torch.ones(1, 3))


def test_zscore_and_batch_consistency(clips):
    fe = LogMel(normalize="zscore")
    batch = torch.from_numpy(np.stack([c[:32000] for c in clips[:2]]))
    x = fe(batch)
    assert torch.allclose(x.mean(dim=(2, 3)), torch.zeros(2, 1), atol=1e-4)
    assert torch.allclose(fe(batch[1:2]), x[1:2], atol=1e-4)


def test_bad_options():
    with pytest.raises(ValueError, match="frontend.log"):
        LogMel(log="ln")
    with pytest.raises(ValueError, match="frontend.normalize"):
        LogMel(normalize="l2")
    with pytest.raises(ValueError, match="delta width"):
        deltas(torch.zeros(1, 4, 20), width=4)


def test_logmel_refuses_features_in_place_of_waveforms():
    """A batch of front-end features (what a loader of cached features yields) is a clear error, not torch's
    stft message; (batch, 1, samples) is still a batch of mono waveforms."""
    fe = LogMel(n_fft=256, hop_length=128, n_mels=16)
    assert fe(torch.zeros(2, 1, 1600)).shape == fe(torch.zeros(2, 1600)).shape
    with pytest.raises(ValueError, match=r"expected waveforms \(batch, samples\), got a tensor of shape "
                                         r"\(2, 1, 16, 13\).*input_features"):
        fe(torch.zeros(2, 1, 16, 13))
