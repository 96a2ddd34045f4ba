"""Packaging: the distribution ``imgstore-ng``, which installs the import package ``imgstore``.

``imgstore`` on the package index is upstream (loopbio's imgstore 0.4.0); this is a drop-in
replacement for it under a name of its own. Both install the same ``imgstore`` package, so only
one of them can be installed in an environment.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
#: the name to install by (``pip install imgstore-ng[plot]``); the import name stays ``imgstore``
DISTRIBUTION = "imgstore-ng"
VERSION = re.search(r'^__version__ = "([^"]+)"', (HERE / "imgstore" / "_version.py").read_text(), re.M).group(1)

setup(
    name=DISTRIBUTION,
    version=VERSION,
    description="Store and read video frames with their frame numbers, times and metadata: a drop-in "
    "replacement for loopbio's imgstore 0.4.0 (import name imgstore).",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    packages=find_packages(include=["imgstore", "imgstore.*"]),
    python_requires=">=3.9",
    install_requires=[
        "numpy>=1.21",
        "opencv-python>=4.5",
        "pandas>=1.3",
        "pyyaml>=5.1",
        "tzlocal>=4.0",
        "av>=12",
        "tqdm>=4.60",
        # ISA-L's deflate: PNG frames written 3-4x faster than with OpenCV (optional where it has no wheels)
        "isal>=1.6; platform_machine == 'x86_64' or platform_machine == 'AMD64' or platform_machine == 'aarch64'"
        " or platform_machine == 'arm64'",
        "tzdata; platform_system == 'Windows'",
    ],
    extras_require={
        "bpk": ["bloscpack"],
        "h5": ["h5py"],
        "plot": ["matplotlib"],
        # lazy arrays over stores, computed on a local or distributed cluster
        "dask": ["dask[array]>=2023.1", "distributed>=2023.1"],
        # stores read over HTTP(S), S3 and any other fsspec URL
        "remote": ["fsspec>=2023.1", "aiohttp", "s3fs>=2024.1"],
        # the documentation site
        "docs": ["mkdocs>=1.5", "mkdocs-material>=9", "mkdocstrings[python]>=0.24"],
        "test": [
            "pytest>=7",
            "pytest-xdist",
            "hypothesis",
            "h5py",
            "bloscpack",
            "ruff",
            "matplotlib",
            "dask[array]>=2023.1",
            "distributed>=2023.1",
            "xarray",
            "fsspec>=2023.1",
            "aiohttp",
            "s3fs>=2024.1",
            "moto[server]",
            "mkdocs>=1.5",
            "mkdocs-material>=9",
            "mkdocstrings[python]>=0.24",
        ],
    },
    entry_points={
        "console_scripts": [
            "imgstore-view = imgstore.apps:main_viewer",
            "imgstore-save = imgstore.apps:main_saver",
            "imgstore-test = imgstore.apps:main_test",
            "imgstore-info = imgstore.apps:main_info",
            "imgstore-export = imgstore.apps:main_export",
            "imgstore-edit = imgstore.apps:main_edit",
        ],
    },
    # no "License ::" classifier: the SPDX expression in ``license`` says it (setuptools warns on both)
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Video",
        "Topic :: Scientific/Engineering :: Image Processing",
    ],
)
