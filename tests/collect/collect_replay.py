"""A replay Kubernetes API server for the collection tests.

`replay_api` (a fixture, exported through conftest.py) serves recorded Kubernetes API
responses (tests/data/collect/k8s-replay/) from a real HTTP server on 127.0.0.1, so that the
official `kubernetes` client is exercised end to end: URL building, query parameters
(limit/continue, tailLines, previous), auth headers, status handling and timeouts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

REPLAY = Path(__file__).parent.parent / "data" / "collect" / "k8s-replay"
TOKEN = "replay-test-token"
CONTINUE = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NDgyMTMsInN0YXJ0Ijoibm9kZTFcdTAwMDAifQ"
SLOW_SECONDS = 3.0


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    authorization: str


@dataclass
class ReplayServer:
    port: int
    requests: list[Request] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path, *, extra_server: str | None = None) -> Path:
        """A kubeconfig with context `replay` (this server) and `down` (a closed port)."""
        down = extra_server or "http://127.0.0.1:9"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            "clusters:\n"
            f"- name: replay\n  cluster:\n    server: {self.url}\n"
            f"- name: down\n  cluster:\n    server: {down}\n"
            "users:\n"
            f"- name: ops\n  user:\n    token: {TOKEN}\n"
            "contexts:\n"
            "- name: replay\n  context:\n    cluster: replay\n    user: ops\n"
            "- name: down\n  context:\n    cluster: down\n    user: ops\n"
            "current-context: replay\n"
        )
        return path

    def calls(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


def _status(code: int, message: str, reason: str) -> tuple[int, str, str]:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return code, "application/json", json.dumps(body)


def _file(name: str, code: int = 200) -> tuple[int, str, str]:
    ctype = "application/json" if name.endswith(".json") else "text/plain"
    return code, ctype, (REPLAY / name).read_text()


def _respond(path: str, query: dict[str, list[str]]) -> tuple[int, str, str]:
    def q(name: str) -> str:
        return query.get(name, [""])[0]

    if path == "/api/v1/nodes":
        return _file("nodes-page2.json" if q("continue") == CONTINUE else "nodes-page1.json")
    lists = {
        "/api/v1/pods": "pods.json",
        "/api/v1/services": "services.json",
        "/api/v1/events": "events.json",
        "/api/v1/configmaps": "configmaps.json",
        "/apis/apps/v1/daemonsets": "daemonsets.json",
    }
    if path in lists:
        return _file(lists[path])
    if path == "/api/v1/endpoints":
        time.sleep(SLOW_SECONDS)  # longer than the test's request timeout
        return _file("endpoints.json")
    if path == "/apis/discovery.k8s.io/v1/endpointslices":
        # What a 1.17-era apiserver answers: discovery.k8s.io/v1 did not exist yet.
        return _file("status-404.json", 404)
    if path == "/apis/networking.k8s.io/v1/networkpolicies":
        return _file("status-403-networkpolicies.json", 403)
    if path == "/api/v1/namespaces/netsleuth/pods":
        if q("labelSelector") != "app.kubernetes.io/name=netsleuth-agent":
            return _status(400, "unexpected selector", "BadRequest")
        return _file("agent-pods.json")
    agent_logs = {"netsleuth-agent-k2x9d": "log-agent-worker-1.txt",
                  "netsleuth-agent-p7q4m": "log-agent-worker-2.txt"}
    for pod, name in agent_logs.items():
        if path == f"/api/v1/namespaces/netsleuth/pods/{pod}/log":
            return _file(name)
    if path == "/api/v1/namespaces/shop/pods/missing":
        return _file("status-404-pod.json", 404)
    logs = {
        ("kube-system", "calico-node-7xk2p", "calico-node"): ("log-calico-node-previous.txt",
                                                              "log-calico-node-previous.txt"),
        ("kube-system", "calico-node-7xk2p", "install-cni"): (None, None),
        ("kube-system", "kube-proxy-q8w5m", "kube-proxy"): ("log-kube-proxy.txt", None),
        ("kube-system", "coredns-6955765f44-4csvp", "coredns"): ("log-coredns.txt",
                                                                 "log-coredns-previous.txt"),
        ("shop", "web-5c9f7b8d6-tq2lx", "web"): ("log-web.txt", None),
    }
    parts = path.split("/")
    if len(parts) == 8 and parts[1:4] == ["api", "v1", "namespaces"] and parts[7] == "log":
        key = (parts[4], parts[6], q("container"))
        if key in logs:
            current, previous = logs[key]
            name = previous if q("previous") == "true" else current
            if name is None:
                if q("previous") == "true":
                    return _status(400, f'previous terminated container "{key[2]}" in pod '
                                   f'"{key[1]}" not found', "BadRequest")
                return 200, "text/plain", ""
            return _file(name)
    return _file("status-404.json", 404)


@pytest.fixture
def replay_api() -> Iterator[ReplayServer]:
    server_state: ReplayServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            server_state.requests.append(
                Request(url.path, query, self.headers.get("Authorization", ""))
            )
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                code, ctype, body = _status(401, "Unauthorized", "Unauthorized")
            else:
                code, ctype, body = _respond(url.path, query)
            data = body.encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    server_state = ReplayServer(port=httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
