"""Datasets in the TAU Urban Acoustic Scenes 2020 Mobile layout, audio loading and caching."""
