"""Describe neurons: captions per clip, LLM summaries with calibration (AND module B), closed-set
concepts (module A) and open-set keywords (module C)."""
