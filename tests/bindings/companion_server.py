"""The real `companion-server` binary for the Python tests (bindings, browser): its own
SQLite file in a temporary folder and a free loopback port, self-signed TLS whose key pin it
writes to a file; `extra` adds flags (e.g. `--csca` for registration). A tiny desktop
"browser" (urllib with a cookie jar) drives the desktop endpoints."""

import http.cookiejar
import json
import os
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def read(path):
    with open(path) as f:
        return f.read().strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The real server binary, on its own SQLite file and port."""

    def __init__(self, extra=(), service_name="Comune di Prova"):
        self.dir = tempfile.TemporaryDirectory()
        self.port = free_port()
        self.origin = f"https://127.0.0.1:{self.port}"
        pin_file = os.path.join(self.dir.name, "pin")
        self.log = open(os.path.join(self.dir.name, "server.log"), "w+")
        self.proc = subprocess.Popen(
            [os.environ["SERVER_BIN"], "--listen", f"127.0.0.1:{self.port}",
             "--database", "sqlite:" + os.path.join(self.dir.name, "db.sqlite"),
             "--card-ca", os.environ["CARD_CA"], "--pin-file", pin_file,
             "--service-name", service_name, *extra],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not (os.path.exists(pin_file) and read(pin_file)):
            if self.proc.poll() is not None or time.time() > deadline:
                self.log.seek(0)
                raise RuntimeError("server did not start:\n" + self.log.read())
            time.sleep(0.05)
        # The pin file may hold the `sha256/` form; the core accepts both.
        self.pin = read(pin_file)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        self.dir.cleanup()


class Desktop:
    """The desktop page's calls, as a browser makes them (cookies kept). The server's
    certificate is self-signed: this side does not check it (the app pins its key)."""

    def __init__(self, server):
        self.origin = server.origin
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
        self.http = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=tls),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(self, method, path, body=None):
        """(status, JSON body or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.origin + path, data=data, method=method, headers={
            "Content-Type": "application/json",
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        })
        try:
            with self.http.open(req, timeout=30) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        return status, (json.loads(text) if text else None)
