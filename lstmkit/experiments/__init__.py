"""Experiments built from the library: the memory demonstration, ..."""
