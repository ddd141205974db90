# SPDX-License-Identifier: Apache-2.0
"""boto3/botocore clients pointed at the emulator."""

import os

import botocore.session
from botocore.config import Config

from conftest import VECTORS

# Debian's botocore 1.29 predates RotateKeyOnDemand; the sourced KMS model of botocore
# 1.43.67 (shared/vectors) is loaded in front of it when present, so every operation is
# checked against the current model.
MODEL_PATH = os.path.join(VECTORS, "aws", "botocore", "data")
HAS_NEW_MODEL = os.path.isfile(os.path.join(MODEL_PATH, "kms", "2014-11-01", "service-2.json"))


def session():
    s = botocore.session.Session()
    if HAS_NEW_MODEL:
        s.get_component("data_loader").search_paths.insert(0, MODEL_PATH)
    return s


def kms_client(emu, access_key=None, secret=None, token=None, retries=0, **cfg):
    a = emu.info["aws"]
    return session().create_client(
        "kms", region_name=a["region"], endpoint_url=a["endpoint_url"], verify=emu.ca_bundle,
        aws_access_key_id=access_key or a["access_key_id"],
        aws_secret_access_key=secret or a["secret_access_key"], aws_session_token=token,
        config=Config(retries={"mode": "standard", "total_max_attempts": retries + 1}, **cfg))
