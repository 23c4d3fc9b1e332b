"""Evaluation: loading a trained run, scoring a split per device and group, reports and plots."""
