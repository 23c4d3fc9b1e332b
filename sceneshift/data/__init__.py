"""Data: dataset adapters, the run's domain, audio reading, the waveform cache, splits as arrays, urban-mobile."""
