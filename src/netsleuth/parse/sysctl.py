"""Parser for sysctl output: `sysctl -a`, `sysctl KEY...`, and sysctl.conf-style files.

Accepted lines:

- `key = value` as sysctl prints it, and `key=value` as sysctl.conf files and `sysctl -w`
  arguments spell it. The value keeps inner whitespace, e.g. the tab in
  `net.ipv4.ip_local_port_range = 32768	60999`, and may be empty
  (`net.ipv4.ip_local_reserved_ports = `).
- `sysctl: ...` diagnostics (`permission denied on key 'X'`, `cannot stat /proc/sys/...: No such
  file or directory`, `reading key "X"`): procps prints them, on stderr, for keys it could not
  read, so they carry no value and are skipped. A pasted terminal session often interleaves them.
- blank lines and `#` / `;` comments (sysctl.conf syntax).

Keys are stored in the dotted form sysctl prints. A key written in the slash form of
sysctl.conf (`net/ipv4/conf/eth0.100/rp_filter`) is converted the way procps does, by swapping
`/` and `.` (`net.ipv4.conf.eth0/100.rp_filter`): a dot inside an interface name is printed as
a slash. sysctl.conf's leading `-` (ignore errors when setting) is dropped.

A key printed on consecutive lines (multi-line values such as `dev.cdrom.info`) gets the lines
joined with newlines; a key that appears again later (two outputs concatenated) takes the later
value, as it would after re-running sysctl.
"""

from __future__ import annotations

from netsleuth.errors import ParseError
from netsleuth.model.net import Sysctls
from netsleuth.model.source import SourceRef

__all__ = ["parse_sysctl"]

_EXPECTED = "`key = value` (sysctl output) or a `sysctl: ...` diagnostic"


def _normalize_key(key: str) -> str:
    """procps' slash form → dotted form: when the first separator is `/`, swap `/` and `.`."""
    first_slash, first_dot = key.find("/"), key.find(".")
    if first_slash != -1 and (first_dot == -1 or first_slash < first_dot):
        return key.translate(str.maketrans("/.", "./"))
    return key


def parse_sysctl(text: str, source: str) -> Sysctls:
    """Parse sysctl output into key → value text (see the module docstring for the forms)."""
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    previous: str | None = None
    for number, raw_line in enumerate(text.split("\n"), 1):
        line = raw_line.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            previous = None
            continue
        if stripped.startswith("sysctl: "):
            previous = None
            continue
        key, sep, value = stripped.partition("=")
        key = key.strip().removeprefix("-")
        if not sep or not key or any(ch.isspace() for ch in key):
            raise ParseError(source, number, line, _EXPECTED)
        key = _normalize_key(key)
        value = value.strip()
        if key == previous:
            values[key] += "\n" + value
        else:
            values[key] = value
            lines[key] = number
        previous = key
    return Sysctls(values=values, source=SourceRef(source), lines=lines)
