# SPDX-License-Identifier: Apache-2.0
"""Plain-HTTP instance metadata endpoints of the three clouds on one loopback port.

The paths do not collide, so one server answers AWS IMDSv2 and the ECS
container credentials endpoint, Azure IMDS and App Service managed identity,
and the GCE metadata server (PROTOCOLS.md §1.5, §2.6, §3.6).
"""

import secrets

from .httpbase import Response, Service, ServiceError
from .util import iso8601

AWS_ROLE = "p11kms-emulator-role"
IMDS_PREFIX = "/latest/meta-data/iam/security-credentials/"


class MetadataService(Service):
    name = "metadata"
    tls = False

    def __init__(self, emu):
        super().__init__(emu)
        self._aws_cached = None

    def route(self, req):
        p, m = req.path, req.method
        if p == "/latest/api/token" and m == "PUT":
            return "ImdsToken"
        if p == IMDS_PREFIX and m == "GET":
            return "ImdsRole"
        if p.startswith(IMDS_PREFIX) and m == "GET":
            return "ImdsCredentials"
        if p == "/ecs/credentials" and m == "GET":
            return "EcsCredentials"
        if p == "/metadata/identity/oauth2/token" and m == "GET":
            return "AzureImdsToken"
        if p == "/msi/token" and m == "GET":
            return "AppServiceToken"
        if p == "/" or p.startswith("/computeMetadata/"):
            return "GceToken" if p.endswith("/service-accounts/default/token") else "GceMetadata"
        raise ServiceError(Response(404, b"Not Found", "text/plain"))

    def error_response(self, req, status, kind, message, retry_after=None):
        headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
        if req.op.startswith("Gce"):
            headers.append(("Metadata-Flavor", "Google"))
        if req.op in ("AzureImdsToken", "AppServiceToken"):
            return Response(status, {"error": "service_unavailable" if status >= 500 else "throttled",
                                     "error_description": message}, headers=headers)
        return Response(status, message.encode(), "text/plain", headers=headers)

    def handle(self, req):
        return getattr(self, "op_" + req.op)(req)

    # --- AWS IMDSv2 -----------------------------------------------------------------------------
    def _aws_session(self):
        aws = self.emu.aws
        with self.emu.lock:
            c = self._aws_cached
            if c is None or aws.creds[c]["revoked"] or aws.creds[c]["expires"] - self.emu.now() < 900:
                c, _ = aws.new_session_credentials("assumed-role/%s/i-0emulator" % AWS_ROLE, 6 * 3600)
                self._aws_cached = c
            return c, dict(aws.creds[c])

    def _imds_token_ok(self, req):
        tok = req.header("X-aws-ec2-metadata-token")
        with self.emu.lock:
            exp = self.emu.aws.imds_tokens.get(tok or "")
        return exp is not None and exp > self.emu.now()

    def op_ImdsToken(self, req):
        if req.header("X-Forwarded-For"):
            return Response(403, b"Forbidden", "text/plain")
        ttl = req.header("X-aws-ec2-metadata-token-ttl-seconds")
        if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return Response(400, b"Bad Request", "text/plain")
        tok = "AQAEA" + secrets.token_urlsafe(40)
        with self.emu.lock:
            self.emu.aws.imds_tokens[tok] = self.emu.now() + int(ttl)
        return Response(200, tok.encode(), "text/plain",
                        headers=[("X-aws-ec2-metadata-token-ttl-seconds", ttl)])

    def op_ImdsRole(self, req):
        # IMDSv1 is treated as disabled (HttpTokens=required), the hardened default.
        if not self._imds_token_ok(req):
            return Response(401, b"Unauthorized", "text/plain")
        return Response(200, AWS_ROLE.encode(), "text/plain")

    def op_ImdsCredentials(self, req):
        if not self._imds_token_ok(req):
            return Response(401, b"Unauthorized", "text/plain")
        if req.path[len(IMDS_PREFIX):].rstrip("/") != AWS_ROLE:
            return Response(404, b"Not Found", "text/plain")
        akid, rec = self._aws_session()
        req.principal = akid
        return Response(200, {"Code": "Success", "LastUpdated": iso8601(self.emu.now()),
                              "Type": "AWS-HMAC", "AccessKeyId": akid, "SecretAccessKey": rec["secret"],
                              "Token": rec["session_token"], "Expiration": iso8601(rec["expires"])},
                        "text/plain")

    def op_EcsCredentials(self, req):
        if req.header("Authorization") != self.emu.aws.container_token:
            return Response(401, {"code": "InvalidToken", "message": "Authorization token is invalid."})
        akid, rec = self._aws_session()
        req.principal = akid
        return Response(200, {"AccessKeyId": akid, "SecretAccessKey": rec["secret"],
                              "Token": rec["session_token"], "Expiration": iso8601(rec["expires"]),
                              "RoleArn": self.emu.aws.role_arn})

    # --- Azure managed identity -------------------------------------------------------------------
    def _azure_token(self, req, resource):
        az = self.emu.azure
        resource = (resource or "").rstrip("/")
        if resource.endswith("/.default"):
            resource = resource[:-len("/.default")]
        if not resource:
            return None, Response(400, {"error": "invalid_request",
                                        "error_description": "Required query variable 'resource' is missing"})
        cid = req.query.get("client_id")
        if cid not in (None, az.mi_client_id) or self.emu.is_revoked("azure", az.mi_client_id):
            return None, Response(400, {"error": "invalid_request",
                                        "error_description": "Identity not found"})
        token, exp = az.issue_token(az.mi_client_id, resource)
        req.principal = az.mi_client_id
        return (token, exp, resource), None

    def op_AzureImdsToken(self, req):
        if req.header("Metadata") != "true":
            return Response(400, {"error": "invalid_request",
                                  "error_description": "Required metadata header not specified"})
        if not req.query.get("api-version"):
            return Response(400, {"error": "invalid_request",
                                  "error_description": "Required query variable 'api-version' is missing"})
        ok, err = self._azure_token(req, req.query.get("resource"))
        if err is not None:
            return err
        token, exp, resource = ok
        now = int(self.emu.now())
        # IMDS sends the numbers as strings (PROTOCOLS.md §2.6).
        return Response(200, {"access_token": token, "client_id": self.emu.azure.mi_client_id,
                              "expires_in": str(exp - now), "expires_on": str(exp),
                              "ext_expires_in": str(exp - now), "not_before": str(now),
                              "resource": resource, "token_type": "Bearer", "refresh_token": ""})

    def op_AppServiceToken(self, req):
        if req.header("X-IDENTITY-HEADER") != self.emu.azure.identity_header:
            return Response(401, {"statusCode": 401, "message": "Unauthorized: X-IDENTITY-HEADER is "
                                  "missing or invalid."})
        ok, err = self._azure_token(req, req.query.get("resource"))
        if err is not None:
            return err
        token, exp, resource = ok
        return Response(200, {"access_token": token, "expires_on": str(exp), "resource": resource,
                              "token_type": "Bearer", "client_id": self.emu.azure.mi_client_id})

    # --- GCE metadata server --------------------------------------------------------------------------
    def response_headers(self, req):
        return [("Metadata-Flavor", "Google")] if req.op.startswith("Gce") else []

    def op_GceToken(self, req):
        if req.header("Metadata-Flavor") != "Google":
            return Response(403, b"Missing required header: Metadata-Flavor", "text/html")
        gcp = self.emu.gcp
        principal = self.emu.gce_service_account
        if self.emu.is_revoked("gcp", principal):
            return Response(404, b"Not Found", "text/plain")
        req.principal = principal
        return Response(200, {"access_token": gcp.issue_token(principal), "expires_in": 3599,
                              "token_type": "Bearer"})

    def op_GceMetadata(self, req):
        if req.path == "/":
            return Response(200, b"computeMetadata/\n", "application/text")
        if req.header("Metadata-Flavor") != "Google":
            return Response(403, b"Missing required header: Metadata-Flavor", "text/html")
        p = req.path[len("/computeMetadata/v1/"):].rstrip("/")
        email = self.emu.gce_service_account
        sa = {"aliases": ["default"], "email": email,
              "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
        values = {
            "project/project-id": self.emu.gcp.project,
            "project/numeric-project-id": "123456789012",
            "instance": "attributes/\nhostname\nid\nservice-accounts/\nzone\n",
            "instance/id": "1234567890123456789",
            "instance/zone": "projects/123456789012/zones/us-central1-a",
            "instance/service-accounts": "default/\n%s/\n" % email,
            "instance/service-accounts/default/email": email,
            "instance/service-accounts/default/scopes": "\n".join(sa["scopes"]) + "\n",
            "universe/universe-domain": "googleapis.com",
        }
        if p == "instance/service-accounts/default" and req.query.get("recursive") == "true":
            return Response(200, sa)
        if p not in values:
            return Response(404, b"Not Found", "text/html")
        return Response(200, values[p].encode(), "application/text")
