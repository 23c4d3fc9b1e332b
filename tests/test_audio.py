"""Bad audio gets a clear error naming the file; odd rates and channel counts are handled."""
import numpy as np
import pytest
import soundfile as sf

from sceneshift.data.audio import AudioError, fit_length, load_audio


def tone(sr=16000, seconds=1.0, f=440.0):
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_unreadable_empty_silent_nan(tmp_path):
    bad = tmp_path / "garbage.wav"
    bad.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match="garbage.wav: unreadable"):
        load_audio(bad, 16000)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="empty.wav: empty"):
        load_audio(empty, 16000)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioError, match="silent.wav: audio is silent"):
        load_audio(silent, 16000)
    nan = tmp_path / "nan.wav"
    x = tone()
    x[100] = np.nan
    sf.write(nan, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: audio contains NaN"):
        load_audio(nan, 16000)
    with pytest.raises(AudioError, match="missing.wav: file not found"):
        load_audio(tmp_path / "missing.wav", 16000)


def test_resample_and_downmix(tmp_path):
    p = tmp_path / "stereo44k.wav"
    x = tone(44100, 2.0)
    sf.write(p, np.stack([x, 0.5 * x], axis=1), 44100)
    y = load_audio(p, 16000)
    assert y.dtype == np.float32 and y.ndim == 1 and len(y) == 32000
    # downmix is the channel mean: peak 0.75 of the left channel's 0.3
    assert abs(np.max(np.abs(y[1000:-1000])) - 0.225) < 0.01


def test_fit_length_repeats_short_clips():
    x = np.arange(5, dtype=np.float32)
    assert fit_length(x, 12).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert fit_length(x, 3).tolist() == [0, 1, 2]
