# SPDX-License-Identifier: Apache-2.0
"""Start/stop the emulator for tests (in-process thread or subprocess) and drive its control API.

    from kmsemu import start
    with start() as emu:                       # or start(mode="subprocess")
        emu.info["aws"]["endpoint_url"], emu.ca_bundle
        emu.disable_key("aws", "alias/p11kms-test")
        emu.fault(service="aws", op="Decrypt", kind="throttle")

Only the standard library is needed on the caller's side in subprocess mode.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "kmsemu.py")
PYTHON = "/usr/bin/python3"


class ControlAPIError(Exception):
    def __init__(self, status, message):
        super().__init__("control API %d: %s" % (status, message))
        self.status = status


class EmulatorHandle:
    def __init__(self, info, stop_fn, state_dir, owns_dir):
        self.info = info
        self._stop_fn = stop_fn
        self.state_dir = state_dir
        self._owns_dir = owns_dir

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def ca_bundle(self):
        return self.info["ca_bundle"]

    @property
    def control_url(self):
        return self.info["control_url"]

    def stop(self):
        if self._stop_fn is not None:
            self._stop_fn()
            self._stop_fn = None
        if self._owns_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # --- control API ---------------------------------------------------------------------------
    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.control_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise ControlAPIError(e.code, e.read().decode("utf-8", "replace"))

    def key_action(self, cloud, action, key, **extra):
        return self.call("POST", "/v1/keys/" + action, dict(extra, cloud=cloud, key=key))

    def create_key(self, cloud, key, **extra):
        return self.key_action(cloud, "create", key, **extra)

    def disable_key(self, cloud, key, **extra):
        return self.key_action(cloud, "disable", key, **extra)

    def enable_key(self, cloud, key, **extra):
        return self.key_action(cloud, "enable", key, **extra)

    def rotate_key(self, cloud, key, **extra):
        return self.key_action(cloud, "rotate", key, **extra)

    def destroy_key(self, cloud, key, **extra):
        return self.key_action(cloud, "destroy", key, **extra)

    def revoke(self, cloud, ident):
        return self.call("POST", "/v1/credentials/revoke", {"cloud": cloud, "id": ident})

    def restore(self, cloud, ident):
        return self.call("POST", "/v1/credentials/restore", {"cloud": cloud, "id": ident})

    def issue(self, cloud, kind, **extra):
        return self.call("POST", "/v1/credentials/issue", dict(extra, cloud=cloud, kind=kind))

    def fault(self, **rule):
        """e.g. fault(service="gcp", op="Encrypt", kind="error", status=503, retry_after=1, count=2)"""
        return self.call("POST", "/v1/faults", rule)["id"]

    def clear_faults(self):
        self.call("DELETE", "/v1/faults")

    def counters(self):
        return self.call("GET", "/v1/counters")["counters"]

    def count(self, service, op):
        return self.counters().get("%s/%s" % (service, op), {}).get("requests", 0)

    def reset_counters(self):
        self.call("DELETE", "/v1/counters")

    def log(self, since=0):
        return self.call("GET", "/v1/log?since=%d" % since)["entries"]

    def set_clock_offset(self, seconds):
        return self.call("POST", "/v1/clock", {"offset_seconds": seconds})

    # --- environment for SDKs and the C module ---------------------------------------------------
    def env_aws(self):
        a = self.info["aws"]
        return {"AWS_ACCESS_KEY_ID": a["access_key_id"], "AWS_SECRET_ACCESS_KEY": a["secret_access_key"],
                "AWS_DEFAULT_REGION": a["region"], "AWS_REGION": a["region"],
                "AWS_ENDPOINT_URL_KMS": a["endpoint_url"], "AWS_ENDPOINT_URL_STS": a["sts_endpoint_url"],
                "AWS_CA_BUNDLE": self.ca_bundle}

    def env_azure(self):
        z = self.info["azure"]
        return {"AZURE_TENANT_ID": z["tenant_id"], "AZURE_CLIENT_ID": z["client_id"],
                "AZURE_CLIENT_SECRET": z["client_secret"], "AZURE_AUTHORITY_HOST": z["authority_host"],
                "REQUESTS_CA_BUNDLE": self.ca_bundle, "SSL_CERT_FILE": self.ca_bundle}

    def env_gcp(self):
        g = self.info["gcp"]
        return {"GOOGLE_APPLICATION_CREDENTIALS": g["service_account_file"],
                "GCE_METADATA_HOST": g["metadata_host"], "GCE_METADATA_IP": g["metadata_host"],
                "METADATA_SERVER_DETECTION": "assume-present", "NODE_EXTRA_CA_CERTS": self.ca_bundle}


def start(mode="thread", state_dir=None, timeout=60):
    """Start an emulator; mode 'thread' runs it in this process, 'subprocess' in a child."""
    owns = state_dir is None
    state_dir = state_dir or tempfile.mkdtemp(prefix="kmsemu-")
    if mode == "thread":
        from .emulator import Emulator
        emu = Emulator(state_dir)
        info = emu.start()
        handle = EmulatorHandle(info, emu.stop, state_dir, owns)
        handle.emulator = emu
        return handle
    if mode != "subprocess":
        raise ValueError("mode must be 'thread' or 'subprocess'")
    info_path = os.path.join(state_dir, "emulator.json")
    if os.path.exists(info_path):
        os.unlink(info_path)
    proc = subprocess.Popen([PYTHON, SCRIPT, "serve", "--state-dir", state_dir, "--quiet"],
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not os.path.exists(info_path):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("emulator did not start (exit %s)" % proc.poll())
        time.sleep(0.05)
    time.sleep(0.05)        # the file is written in one call; give the writer a moment to close it
    with open(info_path) as f:
        info = json.load(f)

    def stop():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    handle = EmulatorHandle(info, stop, state_dir, owns)
    handle.process = proc
    return handle
