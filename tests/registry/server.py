"""Debian's docker-registry on 127.0.0.1 for tests: anonymous, htpasswd (basic) or token auth with a
token server stub of our own (ES256 JWTs signed by a throwaway certificate). Everything it starts
goes away in ``stop()``."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

REGISTRY_BIN = "/usr/bin/docker-registry"
USERS = {"alice": "wonderland"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """GET /token (basic auth, scopes) and POST /token (refresh tokens), as Docker Hub's auth does."""

    def __init__(self, root: Path, service: str, users: dict[str, str]) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.service, self.users, self.issuer = service, users, "servin-test-issuer"
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "servin test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = root / "token.crt"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.refresh: dict[str, str] = {}  # refresh token → user
        self.requests: list[dict[str, Any]] = []
        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def issue(self, user: str, scopes: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and user:  # anonymous users get nothing
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
        claims = {"iss": self.issuer, "sub": user, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                q = parse_qs(urlparse(self.path).query)
                user = ""
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    u, _, p = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(u) != p:
                        self._answer(401, {"details": "incorrect username or password"})
                        return
                    user = u
                server.requests.append({"method": "GET", "user": user, "query": q})
                body: dict[str, Any] = {"token": server.issue(user, q.get("scope", [])), "expires_in": 300}
                if user and q.get("offline_token") == ["true"]:
                    refresh = secrets.token_hex(16)
                    server.refresh[refresh] = user
                    body["refresh_token"] = refresh
                self._answer(200, body)

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(n).decode())
                server.requests.append({"method": "POST", "form": form})
                user = server.refresh.get((form.get("refresh_token") or [""])[0])
                if form.get("grant_type") != ["refresh_token"] or user is None:
                    self._answer(401, {"error": "invalid_grant"})
                    return
                scopes = " ".join(form.get("scope", [])).split()
                self._answer(200, {"access_token": server.issue(user, scopes), "expires_in": 300})

        return Handler

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_tls(root: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for `host` signed by it: (ca.crt, server.crt, server.key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "servin test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (root / "ca.crt", root / "server.crt", root / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class Registry:
    def __init__(self, auth: str = "none", users: dict[str, str] | None = None, tls: bool = False) -> None:
        self.tls = tls
        self.ca_path: Path | None = None
        self.auth = auth
        self.users = dict(users or USERS)
        self.root = Path(tempfile.mkdtemp(prefix="svreg-"))
        self.storage = self.root / "storage"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.token: TokenServer | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def start(self) -> None:
        lines = ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true", "storage:",
                 "  filesystem:", f"    rootdirectory: {self.storage}", "  delete:", "    enabled: true",
                 "  maintenance:", "    uploadpurging:", "      enabled: false",
                 "http:", f"  addr: {self.host}", "  secret: servin-test"]
        if self.auth == "htpasswd":
            import bcrypt

            path = self.root / "htpasswd"
            path.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(5)).decode()}\n"
                                    for u, p in self.users.items()))
            lines += ["auth:", "  htpasswd:", "    realm: servin-test", f"    path: {path}"]
        elif self.auth == "token":
            self.token = TokenServer(self.root, "servin-test-registry", self.users)
            lines += ["auth:", "  token:", f"    realm: {self.token.realm}", "    service: servin-test-registry",
                      f"    issuer: {self.token.issuer}", f"    rootcertbundle: {self.token.cert_path}"]
        if self.tls:
            self.ca_path, cert, key = make_tls(self.root)
            lines += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
        config = self.root / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        log = open(self.root / "registry.log", "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, env=env)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited {self.proc.returncode}: {self.log()}")
            try:
                import ssl

                unverified = ssl._create_unverified_context() if self.tls else None
                urllib.request.urlopen(f"{self.url}/v2/", timeout=1, context=unverified).close()
                return
            except urllib.error.HTTPError:
                return  # 401: up, and asking for credentials
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not answer: {self.log()}")

    def log(self) -> str:
        try:
            return (self.root / "registry.log").read_text()[-4000:]
        except OSError:
            return ""

    def blob_file(self, digest: str) -> Path:
        hexpart = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.token is not None:
            self.token.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # raw API helpers (anonymous registries) for tests that craft content by hand

    def put_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        req = urllib.request.Request(f"{self.url}/v2/{repo}/blobs/uploads/", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as resp:
            location = resp.headers["Location"]
        if location.startswith("/"):
            location = self.url + location
        sep = "&" if "?" in location else "?"
        req = urllib.request.Request(f"{location}{sep}digest={digest}", method="PUT", data=data,
                                     headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(req, timeout=10).close()
        return digest

    def put_manifest(self, repo: str, reference: str, doc: dict[str, Any], media_type: str) -> str:
        raw = json.dumps(doc).encode()
        req = urllib.request.Request(f"{self.url}/v2/{repo}/manifests/{reference}", method="PUT", data=raw,
                                     headers={"Content-Type": media_type})
        urllib.request.urlopen(req, timeout=10).close()
        return "sha256:" + hashlib.sha256(raw).hexdigest()


@contextlib.contextmanager
def running_registry(auth: str = "none", tls: bool = False) -> Iterator[Registry]:
    reg = Registry(auth, tls=tls)
    try:
        reg.start()
        yield reg
    finally:
        reg.stop()
