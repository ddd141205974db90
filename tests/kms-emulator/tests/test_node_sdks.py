# SPDX-License-Identifier: Apache-2.0
"""The npm SDKs (sdk-js/, exact versions in package-lock.json) against the emulator:
@aws-sdk/client-kms, @azure/keyvault-keys + @azure/identity, @google-cloud/kms 5.7.0 (REST).

Skipped when node or sdk-js/node_modules is missing; run-tests.sh installs them with `npm ci`.
"""

import json
import os
import shutil
import subprocess

import pytest

from conftest import EMU_DIR

SDK_DIR = os.path.join(EMU_DIR, "sdk-js")
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None or not os.path.isdir(os.path.join(SDK_DIR, "node_modules")),
                                reason="node or sdk-js/node_modules not installed (npm ci in sdk-js/)")


@pytest.fixture(scope="module")
def info_file(emu, tmp_path_factory):
    path = tmp_path_factory.mktemp("node") / "emulator.json"
    path.write_text(json.dumps(emu.info))
    return str(path)


@pytest.mark.parametrize("script", ["aws.js", "azure.js", "gcp.js"])
def test_npm_sdk(emu, info_file, script):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "KMSEMU_INFO": info_file, "NODE_EXTRA_CA_CERTS": emu.ca_bundle,
           # ADC without a key file falls through to the metadata server on loopback.
           "GCE_METADATA_HOST": emu.info["gcp"]["metadata_host"], "METADATA_SERVER_DETECTION": "assume-present",
           "AWS_EC2_METADATA_DISABLED": "true", "NODE_NO_WARNINGS": "1"}
    p = subprocess.run([NODE, script], cwd=SDK_DIR, env=env, capture_output=True, text=True, timeout=120)
    print(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "FAIL" not in p.stdout
