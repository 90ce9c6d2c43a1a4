"""Package metadata for tinyexit."""

from setuptools import find_packages, setup

setup(
    name="tinyexit",
    version="0.1.0",
    description="Learning to Weight Samples for Dynamic Early-exiting Networks (L2W), from scratch.",
    packages=find_packages(include=["tinyexit", "tinyexit.*"]),
    python_requires=">=3.10",
    install_requires=["numpy>=1.24", "numba>=0.58", "llvmlite", "matplotlib>=3.7"],
    extras_require={
        "gpu": ["cupy>=13"],
        "dev": [
            "pytest>=7",
            "hypothesis>=6",
            "ruff==0.17.6",
            "import-linter>=2",
            "nbclient>=0.9",
            "nbformat>=5.9",
            "ipykernel>=6",
        ],
        "tutorials": ["notebook>=7", "ipykernel>=6"],
    },
    entry_points={"console_scripts": ["tinyexit=tinyexit.cli:main"]},
)
