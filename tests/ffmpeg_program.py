"""The ``ffmpeg`` program, which tests use to make videos as other tools write them."""

from __future__ import annotations

import os
import shutil

import pytest


def require_ffmpeg() -> None:
    """Skip the test without ``ffmpeg``; on CI, where ``.ci/run`` installs it, fail instead."""
    if shutil.which("ffmpeg") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ffmpeg is needed (apt-get install ffmpeg)", pytrace=False)
        pytest.skip("ffmpeg is needed")
