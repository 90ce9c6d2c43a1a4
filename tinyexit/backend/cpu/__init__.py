"""Kernels: cpu backend."""
