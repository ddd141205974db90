# SPDX-License-Identifier: Apache-2.0
"""AWS credential sources the module's chain uses, driven by botocore's own providers:
STS AssumeRoleWithWebIdentity, the ECS container endpoint and IMDSv2."""

import pytest
from botocore.credentials import (AssumeRoleWithWebIdentityCredentialFetcher, ContainerProvider,
                                  InstanceMetadataProvider)
from botocore.exceptions import ClientError
from botocore.utils import ContainerMetadataFetcher, InstanceMetadataFetcher

from awsutil import kms_client, session


def _sts(emu, **kw):
    a = emu.info["aws"]
    from botocore import UNSIGNED
    from botocore.config import Config
    return session().create_client("sts", region_name=a["region"], endpoint_url=a["sts_endpoint_url"],
                                   verify=emu.ca_bundle, config=Config(signature_version=UNSIGNED), **kw)


def test_sts_assume_role_with_web_identity(emu):
    a = emu.info["aws"]
    with open(a["web_identity_token_file"]) as f:
        token = f.read()
    r = _sts(emu).assume_role_with_web_identity(RoleArn=a["role_arn"], RoleSessionName="ci",
                                                WebIdentityToken=token, DurationSeconds=900)
    c = r["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA") and r["AssumedRoleUser"]["Arn"].endswith("/ci")
    kms = kms_client(emu, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    assert kms.encrypt(KeyId="alias/p11kms-test", Plaintext=b"x")["KeyId"] == a["key_arn"]


def test_sts_rejects_bad_tokens(emu):
    a = emu.info["aws"]
    sts = _sts(emu)
    with pytest.raises(ClientError) as ei:
        sts.assume_role_with_web_identity(RoleArn=a["role_arn"], RoleSessionName="xx",
                                          WebIdentityToken="not.a.jwt")
    assert ei.value.response["Error"]["Code"] == "InvalidIdentityToken"
    expired = emu.issue("aws", "web-identity", lifetime=-10)["token"]
    with pytest.raises(ClientError) as ei:
        sts.assume_role_with_web_identity(RoleArn=a["role_arn"], RoleSessionName="xx",
                                          WebIdentityToken=expired)
    assert ei.value.response["Error"]["Code"] == "ExpiredTokenException"
    foreign = emu.issue("azure", "federated")["token"]        # wrong audience
    with pytest.raises(ClientError) as ei:
        sts.assume_role_with_web_identity(RoleArn=a["role_arn"], RoleSessionName="xx",
                                          WebIdentityToken=foreign)
    assert ei.value.response["Error"]["Code"] == "InvalidIdentityToken"


def test_botocore_web_identity_fetcher(emu):
    a = emu.info["aws"]

    def client_creator(service, **kwargs):
        kwargs.update(endpoint_url=a["sts_endpoint_url"], verify=emu.ca_bundle, region_name=a["region"])
        return session().create_client(service, **kwargs)

    with open(a["web_identity_token_file"]) as f:
        tok = f.read()
    fetcher = AssumeRoleWithWebIdentityCredentialFetcher(client_creator, lambda: tok, a["role_arn"])
    creds = fetcher.fetch_credentials()
    kms = kms_client(emu, creds["access_key"], creds["secret_key"], creds["token"])
    kms.list_keys()


def test_botocore_container_provider(emu, monkeypatch):
    a = emu.info["aws"]
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", a["container_credentials_full_uri"])
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", a["container_authorization_token"])
    creds = ContainerProvider().load()
    assert creds is not None and creds.method == "container-role"
    f = creds.get_frozen_credentials()
    kms_client(emu, f.access_key, f.secret_key, f.token).list_keys()
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong")
    fetcher = ContainerMetadataFetcher(sleep=lambda s: None)
    with pytest.raises(Exception):
        fetcher.retrieve_full_uri(a["container_credentials_full_uri"],
                                  headers={"Authorization": "wrong"})


def test_botocore_imds_v2_provider(emu):
    a = emu.info["aws"]
    fetcher = InstanceMetadataFetcher(timeout=2, num_attempts=1, env={},
                                      config={"ec2_metadata_service_endpoint": a["imds_endpoint"]})
    creds = InstanceMetadataProvider(iam_role_fetcher=fetcher).load()
    assert creds is not None and creds.method == "iam-role"
    f = creds.get_frozen_credentials()
    kms_client(emu, f.access_key, f.secret_key, f.token).list_keys()
    log = [e for e in emu.log() if e["service"] == "metadata" and e["op"].startswith("Imds")]
    assert [e["op"] for e in log[-3:]] == ["ImdsToken", "ImdsRole", "ImdsCredentials"]
    assert all(e["headers"].get("x-aws-ec2-metadata-token", "<redacted>") == "<redacted>" for e in log)


def test_full_default_chain_via_environment(emu, monkeypatch):
    """botocore's whole default chain, configured only by environment, lands on IMDS."""
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", emu.info["aws"]["imds_endpoint"])
    creds = session().get_credentials()
    assert creds.method == "iam-role"
    f = creds.get_frozen_credentials()
    kms_client(emu, f.access_key, f.secret_key, f.token).list_keys()
