# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: one emulator per test session (in-process), faults cleared after each test."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
EMU_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(EMU_DIR))
sys.path.insert(0, EMU_DIR)

from kmsemu.harness import start  # noqa: E402

# The sourced vectors live next to the repository (../shared/vectors); KMSEMU_VECTORS overrides.
VECTORS = os.environ.get("KMSEMU_VECTORS", os.path.join(os.path.dirname(REPO), "shared", "vectors"))


@pytest.fixture(scope="session")
def emu():
    handle = start(mode="thread")
    yield handle
    handle.stop()
    assert not handle.emulator.internal_errors, handle.emulator.internal_errors


@pytest.fixture(autouse=True)
def _clean_faults(request):
    yield
    if "emu" in request.fixturenames:
        h = request.getfixturevalue("emu")
        h.clear_faults()
        h.set_clock_offset(0)


@pytest.fixture(autouse=True)
def _no_ambient_cloud_env(monkeypatch):
    """Tests must never pick up a developer's real cloud settings or proxies."""
    for k in list(os.environ):
        if k.startswith(("AWS_", "AZURE_", "GOOGLE_", "GCE_", "IDENTITY_", "MSI_", "IMDS_")) or \
                k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/kmsemu-credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/kmsemu-config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
