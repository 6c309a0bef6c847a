"""Fuzzing the reader: the shared harness, the atheris target, and the seed corpus."""
