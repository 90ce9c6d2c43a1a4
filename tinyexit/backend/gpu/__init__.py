"""Kernels: gpu backend."""
