# SPDX-License-Identifier: Apache-2.0
"""Control API for tests: JSON over plain HTTP on its own loopback port.

Everything a test needs to drive the emulator from outside: key lifecycle,
credential revocation and minting, fault injection, counters, the request log
and the emulator clock. See docs/kms-emulator.md for the reference.
"""

import json

from .httpbase import Response, Service, ServiceError
from .util import WORKLOAD_SUBJECT

KEY_ACTIONS = ("create", "disable", "enable", "rotate", "destroy", "backdate")


class ControlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ControlService(Service):
    name = "control"
    tls = False
    faultable = False

    def route(self, req):
        return "%s %s" % (req.method, req.path)

    def error_response(self, req, status, kind, message, retry_after=None):
        return Response(status, {"error": message})

    def handle(self, req):
        try:
            try:
                body = req.json_body() if req.body else {}
            except (ValueError, UnicodeDecodeError) as e:
                raise ControlError(400, "invalid JSON: %s" % e)
            out = self._dispatch(req, body)
            return Response(200, out if out is not None else {})
        except ControlError as e:
            return Response(e.status, {"error": str(e)})
        except (ValueError, KeyError, TypeError) as e:
            return Response(400, {"error": "%s: %s" % (type(e).__name__, e)})
        except ServiceError as e:
            return Response(e.response.status, {"error": e.response.body.decode("utf-8", "replace")})
        except Exception as e:      # surface domain errors (AzError, GcpError, KmsError) as 400s
            return Response(400, {"error": "%s: %s" % (type(e).__name__, e)})

    def _dispatch(self, req, body):
        emu = self.emu
        m, p = req.method, req.path.rstrip("/")
        if m == "GET" and p == "/v1/info":
            return emu.info
        if m == "POST" and p.startswith("/v1/keys/"):
            action = p[len("/v1/keys/"):]
            if action not in KEY_ACTIONS:
                raise ControlError(404, "unknown key action %r" % action)
            return getattr(self, "_key_" + body.get("cloud", "").replace("-", "_"),
                           self._no_cloud)(action, body)
        if m == "POST" and p in ("/v1/credentials/revoke", "/v1/credentials/restore"):
            emu.revoke(body["cloud"], body["id"], revoked=p.endswith("revoke"))
            return {}
        if m == "POST" and p == "/v1/credentials/issue":
            return self._issue(body)
        if p == "/v1/faults":
            if m == "POST":
                return {"id": emu.faults.add(body)}
            if m == "GET":
                return {"faults": emu.faults.list()}
            if m == "DELETE":
                emu.faults.clear()
                return {}
        if p == "/v1/counters":
            if m == "GET":
                with emu._stats_lock:
                    return {"counters": json.loads(json.dumps(emu.counters)),
                            "internal_errors": list(emu.internal_errors)}
            if m == "DELETE":
                with emu._stats_lock:
                    emu.counters.clear()
                return {}
        if m == "GET" and p == "/v1/log":
            since = int(req.query.get("since", "0"))
            with emu._stats_lock:
                return {"entries": [e for e in emu.log if e["seq"] > since]}
        if m == "POST" and p == "/v1/clock":
            off = body.get("offset_seconds")
            if not isinstance(off, (int, float)) or isinstance(off, bool):
                raise ControlError(400, "offset_seconds must be a number")
            emu.clock_offset = float(off)
            return {"now": emu.now()}
        raise ControlError(404, "no such control endpoint: %s %s" % (m, p))

    @staticmethod
    def _backdate_seconds(body):
        secs = body.get("seconds")
        if not isinstance(secs, (int, float)) or isinstance(secs, bool) or secs < 0:
            raise ControlError(400, "seconds must be a non-negative number")
        return secs

    @staticmethod
    def _no_cloud(action, body):
        raise ControlError(400, "cloud must be one of aws, azure, gcp")

    # --- key lifecycle per cloud ------------------------------------------------------------------
    def _key_aws(self, action, body):
        st = self.emu.aws
        if action == "create":
            key = st.create_key(body.get("description", ""), alias=body.get("alias"))
            return {"key_id": key.key_id, "arn": key.arn}
        with self.emu.lock:
            key = st.resolve(body["key"])
            if action == "disable":
                st.set_state(key, "Disabled")
            elif action == "enable":
                st.set_state(key, "Enabled")
            elif action == "rotate":
                # What a scheduled rotation leaves behind (RotationType AUTOMATIC).
                key.add_version(self.emu.now(), "AUTOMATIC")
            elif action == "backdate":
                if key.asymmetric:
                    raise ControlError(400, "asymmetric AWS keys have no key materials to backdate")
                m = key.backdate(self._backdate_seconds(body), body.get("version"))
                return {"key_id": key.key_id, "arn": key.arn, "version": m.id,
                        "created": m.created, "key_created": key.created}
            elif action == "destroy":
                # The end of the pending-deletion window: the key and its aliases are gone.
                del st.keys[key.key_id]
                for name in [a for a, v in st.aliases.items() if v["key"] == key.key_id]:
                    del st.aliases[name]
            return {"key_id": key.key_id, "arn": key.arn, "versions": len(key.versions)}

    def _key_azure(self, action, body):
        st = self.emu.azure
        vault = body.get("vault", "vault")
        if vault not in st.vaults:
            raise ControlError(400, "vault must be 'vault' or 'hsm'")
        name = body["key"]
        if action == "create":
            key, v = st.create_key(vault, name, body.get("kty", "RSA"), body.get("size"),
                                   body.get("key_ops"), crv=body.get("crv"))
            return {"name": key.name, "version": v.version}
        with self.emu.lock:
            key = st.vaults[vault].get(name.lower())
            if key is None:
                raise ControlError(404, "no key %s in %s" % (name, vault))
            if action in ("disable", "enable"):
                for v in key.versions:
                    if body.get("version") in (None, v.version):
                        v.enabled = action == "enable"
            elif action == "rotate":
                cur = key.versions[-1]
                size = (cur.material.key_size if not cur.kty.startswith("oct") else len(cur.material) * 8)
                st.create_key(vault, key.name, cur.kty, size, cur.key_ops, crv=cur.crv)
            elif action == "backdate":
                secs = self._backdate_seconds(body)
                want = body.get("version")
                v = key.versions[-1] if want is None else next(
                    (x for x in key.versions if x.version == str(want).lower()), None)
                if v is None:
                    raise ControlError(404, "no version %s of %s" % (want, name))
                v.created = int(v.created - secs)
                v.updated = int(v.updated - secs)
                return {"name": key.name, "version": v.version, "created": v.created}
            elif action == "destroy":
                del st.vaults[vault][name.lower()]
            return {"name": key.name, "versions": [v.version for v in key.versions]}

    def _key_gcp(self, action, body):
        st = self.emu.gcp
        if action == "create":
            ring = body.get("key_ring") or "projects/%s/locations/global/keyRings/p11kms" % st.project
            key = st.create_key(ring, body["key"], body.get("purpose", "ENCRYPT_DECRYPT"),
                                body.get("algorithm"))
            return {"name": key.name}
        with self.emu.lock:
            name = body["key"]
            kname, _, vid = name.partition("/cryptoKeyVersions/")
            key = st.keys.get(kname)
            if key is None:
                raise ControlError(404, "no key %s" % kname)
            if action == "rotate":
                n = key.add_version(self.emu.now())
                if key.purpose == "ENCRYPT_DECRYPT":
                    key.primary = n
                return {"name": key.versions[n].name}
            if vid:
                v = key.versions.get(int(vid))
            else:
                v = key.versions.get(key.primary if key.primary is not None else max(key.versions))
            if v is None:
                raise ControlError(404, "no such version")
            if action == "backdate":
                v.created -= self._backdate_seconds(body)
                key.created = min(key.created, v.created)
                return {"name": v.name, "created": v.created}
            if action == "disable":
                v.state = "DISABLED"
            elif action == "enable":
                v.state = "ENABLED"
            elif action == "destroy":
                v.state = "DESTROYED"
                v.destroy_material()
                v.destroy_event_time = self.emu.now()
            return {"name": v.name, "state": v.state}

    # --- credentials the tests hand to clients -----------------------------------------------------
    def _issue(self, body):
        emu = self.emu
        cloud, kind = body.get("cloud"), body.get("kind")
        lifetime = int(body.get("lifetime", 3600))
        if cloud == "aws" and kind == "web-identity":
            subject = body.get("subject", WORKLOAD_SUBJECT)
            return {"token": emu.oidc_token("sts.amazonaws.com", subject, lifetime)}
        if cloud == "aws" and kind == "session":
            with emu.lock:
                akid, rec = emu.aws.new_session_credentials("test-session", lifetime)
            return {"access_key_id": akid, "secret_access_key": rec["secret"],
                    "session_token": rec["session_token"], "expires": rec["expires"]}
        if cloud == "aws" and kind == "static":
            with emu.lock:
                akid = emu.aws.new_static_credentials()
            return {"access_key_id": akid, "secret_access_key": emu.aws.creds[akid]["secret"]}
        if cloud == "azure" and kind == "federated":
            return {"token": emu.oidc_token("api://AzureADTokenExchange",
                                            body.get("subject", WORKLOAD_SUBJECT), lifetime)}
        if cloud == "azure" and kind == "access-token":
            tok, exp = emu.azure.issue_token(body.get("client_id", emu.info["azure"]["client_id"]),
                                             body.get("resource", "https://vault.azure.net"), lifetime)
            return {"token": tok, "expires_on": exp}
        if cloud == "gcp" and kind == "access-token":
            principal = body.get("principal", emu.info["gcp"]["service_account_email"])
            return {"token": emu.gcp.issue_token(principal, lifetime)}
        raise ControlError(400, "unknown credential kind %s/%s" % (cloud, kind))
