"""Measure how well hallucination detectors separate hallucinated from faithful outputs."""
