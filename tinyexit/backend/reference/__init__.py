"""Kernels: reference backend."""
