"""HEAR 2021: API modules, task directories, embedding cache, probe trainer and metrics."""
