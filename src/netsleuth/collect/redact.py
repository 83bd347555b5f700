"""Remove credentials from collected text and Kubernetes objects before they are written.

A bundle is meant to be attached to tickets and shared with people outside the team, so
anything that authenticates (tokens, passwords, private keys, kubeconfig blobs) is replaced by
`REDACTED` and counted. Secrets are never read at all (see k8s.py); what is handled here is the
credential material that leaks into places that *are* read: container env values, ConfigMap
data, command-line flags, the `last-applied-configuration` annotation and log lines.

The rules aim at few false positives: evidence that is not a credential (file paths such as
`tokenFile: /var/run/secrets/...`, CA certificates, ordinary log text like "token expired")
must survive, because the diagnosis quotes it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

REDACTED = "<redacted>"

# Names (env var names, JSON/YAML keys, flag names) whose value is a credential.
_SENSITIVE_NAME = re.compile(
    r"(pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|client[_-]?key|auth[_-]?key|credentials?|bearer|session[_-]?key|signing[_-]?key)",
    re.IGNORECASE,
)

# DOTALL so that a key inside a JSON string or an escaped log line (newlines as "\n") matches.
_PEM_PRIVATE_KEY = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?!<redacted>).*?-----END \1PRIVATE KEY-----",
    re.DOTALL,
)
_BEARER = re.compile(r"(\b[Bb]earer\s+)([A-Za-z0-9\-._~+/]{8,}=*)")
_BASIC = re.compile(r"(\bAuthorization:\s*Basic\s+)([A-Za-z0-9+/]{4,}=*)", re.IGNORECASE)
# A JSON Web Token (service-account tokens are JWTs): header.payload.signature, base64url.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
# name=value: command-line flags (--token=x), env dumps (DB_PASSWORD=x), URLs (?password=x).
_ASSIGN = re.compile(r"(?P<key>[A-Za-z0-9_.-]+)(?P<sep>=)(?P<value>[^\s\"',;&]+)")
# "name": "value" in JSON (possibly with escaped quotes inside a log line).
_JSON_PAIR = re.compile(
    r"(?P<q>\\?\")(?P<key>[A-Za-z0-9_.-]+)(?P=q)(?P<sep>\s*:\s*)(?P=q)(?P<value>(?:(?!(?P=q)).)+)(?P=q)"
)
# name: value at the start of a line (YAML, HTTP-style headers, kubeconfig).
_YAML_PAIR = re.compile(
    r"^(?P<indent>[ \t]*-?[ \t]*)(?P<key>[A-Za-z0-9_.-]+)(?P<sep>:[ \t]+)(?P<value>[^\s#][^\n]*)$",
    re.MULTILINE,
)
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s/@]+)(@)")
# Long base64 runs: checked by decoding, see _is_secret_base64.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{60,}={0,2}")


# Names that merely refer to a credential (`secretName`, `tokenFile`, `passwordRef`,
# `automountServiceAccountToken`) rather than hold one.
_REFERENCE_NAME = re.compile(
    r"(name|ref|file|path|dir|seconds|mode|kind|type|policy|automount\w*)$", re.IGNORECASE
)


def _is_secret_name(name: str) -> bool:
    return bool(_SENSITIVE_NAME.search(name)) and not _REFERENCE_NAME.search(name)


def _is_evidence_value(value: str) -> bool:
    """Values that sit under a sensitive-looking name but are not credentials.

    A file path (`tokenFile: /var/run/secrets/...`, `ETCD_KEY_FILE=/etc/...`) names where a
    credential lives; it is useful evidence and reveals nothing. Empty values and the
    redaction marker itself are left alone too.
    """
    stripped = value.strip().strip("\"'")
    return (
        not stripped
        or stripped.startswith(("/", "<redacted>", "$(", "${"))
        or stripped in {"null", "true", "false", "~", "|", ">", "|-", ">-"}
    )


def _is_secret_base64(blob: str) -> bool:
    """A base64 blob that decodes to a private key or a kubeconfig with credentials.

    CA certificates (`certificate-authority-data`) decode to `BEGIN CERTIFICATE` and are
    public, so they are kept.
    """
    padded = blob + "=" * (-len(blob) % 4)
    try:
        decoded = base64.b64decode(padded, validate=True).decode("utf-8", errors="strict")
    except (binascii.Error, ValueError):
        return False
    if "PRIVATE KEY-----" in decoded:
        return True
    is_kubeconfig = ("clusters" in decoded and "users" in decoded) or "kind: Config" in decoded
    has_credentials = any(
        word in decoded for word in ("token", "client-key-data", "password", "auth-provider")
    )
    return is_kubeconfig and has_credentials


class Redactor:
    """Applies the redaction rules and counts every replacement (for the manifest)."""

    def __init__(self) -> None:
        self.count = 0

    def _hit(self) -> str:
        self.count += 1
        return REDACTED

    def text(self, text: str) -> str:
        """Redact free text: logs, command outputs, ConfigMap values."""
        if not text:
            return text
        text = _PEM_PRIVATE_KEY.sub(
            lambda m: f"-----BEGIN {m.group(1)}PRIVATE KEY-----{self._hit()}"
            f"-----END {m.group(1)}PRIVATE KEY-----",
            text,
        )
        text = _JWT.sub(lambda m: self._hit(), text)
        text = _BEARER.sub(lambda m: m.group(1) + self._hit(), text)
        text = _BASIC.sub(lambda m: m.group(1) + self._hit(), text)
        text = _URL_USERINFO.sub(lambda m: m.group(1) + self._hit() + m.group(3), text)
        text = _JSON_PAIR.sub(self._pair, text)
        text = _YAML_PAIR.sub(self._yaml_pair, text)
        text = _ASSIGN.sub(self._assign, text)
        text = _BASE64_RUN.sub(
            lambda m: self._hit() if _is_secret_base64(m.group(0)) else m.group(0), text
        )
        return text

    def _pair(self, m: re.Match[str]) -> str:
        value = m.group("value")
        if not _is_secret_name(m.group("key")) or _is_evidence_value(value):
            return m.group(0)
        q = m.group("q")
        return f"{q}{m.group('key')}{q}{m.group('sep')}{q}{self._hit()}{q}"

    def _yaml_pair(self, m: re.Match[str]) -> str:
        value = m.group("value")
        if not _is_secret_name(m.group("key")) or _is_evidence_value(value):
            return m.group(0)
        return f"{m.group('indent')}{m.group('key')}{m.group('sep')}{self._hit()}"

    def _assign(self, m: re.Match[str]) -> str:
        value = m.group("value")
        if not _is_secret_name(m.group("key")) or _is_evidence_value(value):
            return m.group(0)
        return f"{m.group('key')}{m.group('sep')}{self._hit()}"

    def obj(self, value: Any, key: str = "") -> Any:
        """Redact a Kubernetes object (decoded JSON) and return a redacted copy.

        Env entries `{"name": N, "value": V}` are judged by N; map entries (ConfigMap data,
        annotations, labels) by their key; every string also goes through `text`. A string
        that is itself JSON (the `last-applied-configuration` annotation holds the whole
        applied object, env values included) is decoded, redacted and re-encoded.
        """
        if isinstance(value, dict):
            env_name = value.get("name")
            out: dict[str, Any] = {}
            for k, v in value.items():
                if (
                    k == "value"
                    and isinstance(env_name, str)
                    and isinstance(v, str)
                    and _is_secret_name(env_name)
                    and not _is_evidence_value(v)
                ):
                    out[k] = self._hit()
                else:
                    out[k] = self.obj(v, k)
            return out
        if isinstance(value, list):
            return [self.obj(v, key) for v in value]
        if isinstance(value, str):
            if key and _is_secret_name(key) and not _is_evidence_value(value):
                return self._hit()
            return self._string(value)
        return value

    def _string(self, value: str) -> str:
        stripped = value.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            try:
                decoded = json.loads(stripped)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                before = self.count
                redacted = self.obj(decoded)
                if self.count == before:
                    return value
                return json.dumps(redacted, separators=(",", ":"))
        return self.text(value)
