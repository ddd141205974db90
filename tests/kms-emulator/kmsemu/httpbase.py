# SPDX-License-Identifier: Apache-2.0
"""HTTP(S) plumbing shared by every emulated service.

Each service (AWS KMS, Key Vault, Google KMS, the metadata endpoints, ...)
is a Service object bound to one ThreadingHTTPServer on a loopback port.
The handler here does everything that is not protocol-specific: bounded body
reading, fault injection, counters and the redacted request log.
"""

import http.server
import json
import socket
import socketserver
import ssl
import struct
import threading
import time
import uuid
from urllib.parse import parse_qsl, unquote, urlencode

MAX_BODY = 1 << 20          # no KMS request is anywhere near 1 MiB (AWS caps plaintext at 4 KiB)
MAX_HEADER_LINES = 100      # cap on chunked-body trailer lines (http.server caps request headers)
HANDSHAKE_OP = "handshake"  # fault op name matched at TLS handshake time, before any request


class ServiceError(Exception):
    """Raised by a service to answer with a prepared error response."""

    def __init__(self, response):
        super().__init__(response.status)
        self.response = response


class Response:
    def __init__(self, status=200, body=b"", content_type=None, headers=None):
        self.status = status
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":")).encode()
            content_type = content_type or "application/json"
        elif isinstance(body, str):
            body = body.encode()
        self.body = body
        self.headers = list(headers or [])
        if content_type:
            self.headers.append(("Content-Type", content_type))
        # Services may stash the decoded JSON so faults (CRC corruption) can rewrite it.
        self.json = None


class Request:
    def __init__(self, handler):
        self.method = handler.command
        target = handler.path
        self.raw_path, _, self.raw_query = target.partition("?")
        self.path = unquote(self.raw_path)
        self.query = dict(parse_qsl(self.raw_query, keep_blank_values=True))
        self.headers = handler.headers              # case-insensitive email.message.Message
        self.body = b""
        self.op = "unknown"
        self.principal = None
        self.client = handler.client_address

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def json_body(self):
        """Decode the body as a JSON object; the caller maps ValueError to its error shape."""
        if not self.body:
            return {}
        try:
            obj = json.loads(self.body.decode("utf-8"))
        except RecursionError:            # deeply nested input: a client error, not a crash
            raise ValueError("JSON nested too deeply")
        if not isinstance(obj, dict):
            raise ValueError("top-level JSON value is not an object")
        return obj

    def form_body(self):
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))


class Service:
    """Base class: subclasses implement route() and handle()."""

    name = "base"
    tls = True
    faultable = True        # the control API is exempt, so a "*" rule cannot lock tests out

    def __init__(self, emu):
        self.emu = emu
        self.port = None

    @property
    def base_url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def route(self, req):
        """Name the operation from method, path and headers only (the body is not read yet)."""
        raise NotImplementedError

    def pre_body(self, req):
        """Return a Response to answer before the body is read (Key Vault's challenge), or None."""
        return None

    def handle(self, req):
        raise NotImplementedError

    def error_response(self, req, status, kind, message, retry_after=None):
        """Service-native error body for a status injected by a fault or raised by plumbing.

        kind is one of: throttle, unavailable, internal, too_large, bad_request.
        """
        body = {"error": kind, "message": message}
        headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
        return Response(status, body, headers=headers)

    def corrupt_crc32c(self, resp):
        return resp

    def response_headers(self, req):
        return []


# Header names whose values never reach the request log.
_SECRET_HEADERS = {"authorization", "x-amz-security-token", "x-aws-ec2-metadata-token",
                   "x-identity-header", "secret", "cookie", "proxy-authorization",
                   "x-goog-iam-authorization-token"}
_SECRET_QUERY_WORDS = ("token", "secret", "assertion", "signature", "credential", "password",
                       "code", "key")


def redact_query(raw_query):
    if not raw_query:
        return ""
    out = []
    for k, v in parse_qsl(raw_query, keep_blank_values=True):
        if any(w in k.lower() for w in _SECRET_QUERY_WORDS):
            v = "<redacted>"
        out.append((k, v))
    return urlencode(out)


class _BodyError(Exception):
    def __init__(self, handler, status, kind, message):
        super().__init__(message)
        handler.close_connection = True
        self.status, self.kind, self.message = status, kind, message


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server writes headers and body in separate send() calls; with Nagle on, a
    # keep-alive client waits for the delayed ACK (~40 ms) on every reply (DESIGN.md §9).
    disable_nagle_algorithm = True
    server_version = "kmsemu"
    sys_version = ""
    timeout = 120     # idle keep-alive connections are dropped after two minutes

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):       # the emulator keeps its own structured log
        pass

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    # --- body -----------------------------------------------------------------------------
    def _read_body(self):
        """Read the request body with a hard cap (MAX_BODY); raises _BodyError otherwise.

        Any error leaves the stream position unknown, so the connection is closed after
        the reply.
        """
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(66)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _BodyError(self, 400, "bad_request", "Malformed chunked body.")
                if size == 0:
                    for _ in range(MAX_HEADER_LINES):     # trailers, then the blank line
                        if self.rfile.readline(8194) in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > MAX_BODY:
                    raise _BodyError(self, 413, "too_large", "Request body exceeds %d bytes." % MAX_BODY)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.strip().isdigit():
            raise _BodyError(self, 400, "bad_request", "Invalid Content-Length.")
        n = int(length)
        if n > MAX_BODY:
            raise _BodyError(self, 413, "too_large", "Request body exceeds %d bytes." % MAX_BODY)
        data = self.rfile.read(n)
        if len(data) != n:
            raise _BodyError(self, 400, "bad_request", "Truncated body.")
        return data

    def _drain(self):
        try:
            self._read_body()
        except _BodyError:
            pass

    # --- dispatch -------------------------------------------------------------------------
    def _dispatch(self):
        svc = self.server.service
        emu = self.server.emu
        started = time.monotonic()
        req = Request(self)
        fault = None
        resp = None
        body_read = False
        try:
            req.op = svc.route(req)
        except ServiceError as e:
            resp = e.response
        if resp is None and svc.faultable:
            fault = emu.faults.take(svc.name, req.op)
            if fault is not None:
                kind = fault["kind"]
                if kind == "latency":
                    time.sleep(fault.get("delay_ms", 1000) / 1000.0)
                elif kind in ("reset", "drop", "tls"):
                    self._drain()
                    emu.record(svc.name, req, None, fault=kind, started=started)
                    self._break_connection(kind)
                    return
                elif kind in ("error", "throttle"):
                    self._drain()
                    body_read = True
                    resp = self._fault_error(svc, req, fault)
        if resp is None:
            resp = svc.pre_body(req)
        if resp is None:
            body_read = True
            try:
                req.body = self._read_body()
            except _BodyError as e:
                resp = svc.error_response(req, e.status, e.kind, e.message)
            else:
                try:
                    resp = svc.handle(req)
                except ServiceError as e:
                    resp = e.response
                except Exception as e:      # a bug in the emulator must still look like a 500
                    emu.note_internal_error(svc.name, req.op, e)
                    resp = svc.error_response(req, 500, "internal", "Internal emulator error.")
        if not body_read:
            # The reply did not depend on the body (e.g. the 401 challenge) but the
            # connection stays usable only once the body has been consumed.
            self._drain()
        if fault is not None and fault["kind"] == "corrupt_crc32c":
            resp = svc.corrupt_crc32c(resp)
        emu.record(svc.name, req, resp.status, fault=fault and fault["kind"], started=started)
        slow = fault if fault is not None and fault["kind"] == "slow_body" else None
        self._send(svc, req, resp, slow)

    def _fault_error(self, svc, req, fault):
        status = int(fault.get("status", 503 if fault["kind"] == "error" else 429))
        retry_after = fault.get("retry_after")
        kind = "throttle" if fault["kind"] == "throttle" or status == 429 else (
            "unavailable" if status == 503 else "internal")
        return svc.error_response(req, status, kind, fault.get("message") or "Injected fault.",
                                  retry_after=retry_after)

    def _send(self, svc, req, resp, slow):
        self.send_response(resp.status)
        for k, v in svc.response_headers(req):
            self.send_header(k, v)
        for k, v in resp.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if slow is None:
            self.wfile.write(resp.body)
            return
        # Slow body: trickle the bytes so client read timeouts can be exercised.
        delay = slow.get("delay_ms", 2000) / 1000.0
        pieces = max(1, min(len(resp.body), 8))
        step = max(1, len(resp.body) // pieces)
        for i in range(0, len(resp.body), step):
            self.wfile.write(resp.body[i:i + step])
            self.wfile.flush()
            time.sleep(delay / pieces)

    def _break_connection(self, kind):
        self.close_connection = True
        conn = self.connection
        try:
            if kind == "tls" and isinstance(conn, ssl.SSLSocket):
                # Write bytes that are not a TLS record straight onto the TCP stream:
                # the client's TLS layer fails ("wrong version number"/bad record mac).
                raw = socket.socket(fileno=socket.dup(conn.fileno()))
                try:
                    raw.sendall(b"\x15\x03\x03\x00\x02\x02\x50garbage-not-tls")
                finally:
                    raw.close()
            elif kind == "tls":
                conn.sendall(b"\x16\x03\x01garbage-not-http")
            if kind in ("reset", "tls"):
                # SO_LINGER 0: close() sends RST instead of FIN -> ECONNRESET at the client.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass


class EmuServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, emu, service, ssl_ctx):
        self.emu = emu
        self.service = service
        self.ssl_ctx = ssl_ctx
        super().__init__(("127.0.0.1", 0), Handler)
        service.port = self.server_address[1]

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the per-connection thread, so one slow or
        # broken client cannot stall accept() for everyone else.
        if self.ssl_ctx is None:
            return super().finish_request(request, client_address)
        ctx = self.ssl_ctx
        if self.emu.faults.take(self.service.name, HANDSHAKE_OP, exact=True) is not None:
            # Present a certificate from a CA nobody trusts: the client's verification fails.
            ctx = self.emu.untrusted_ssl_ctx
        try:
            request.settimeout(30)
            tls = ctx.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError):
            # Counted, so a test can tell how often a client that refused our certificate
            # tried (no request follows a failed handshake, so the log has no entry).
            self.emu.count_failed_handshake(self.service.name)
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass        # clients that vanish mid-request are normal under fault injection


def new_request_id():
    return str(uuid.uuid4())


class ServerThread:
    def __init__(self, server):
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="kmsemu-%s" % server.service.name, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
