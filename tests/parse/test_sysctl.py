"""Tests for netsleuth.parse.sysctl on real `sysctl` output (tests/data/sysctl/make_golden.sh)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsleuth.errors import ParseError
from netsleuth.model.source import SourceRef
from netsleuth.parse.sysctl import parse_sysctl

DATA = Path(__file__).resolve().parent.parent / "data" / "sysctl"


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


class TestGolden:
    def test_sysctl_a_as_root(self) -> None:
        text = read("sysctl-a-net.txt")
        s = parse_sysctl(text, "sysctl.txt")
        assert len(s.values) == len(text.splitlines()) == 825
        assert s.source == SourceRef("sysctl.txt")
        assert s.get("net.ipv4.ip_forward") == "1"
        assert s.get_int("net.ipv4.ip_forward", 0) == 1
        assert s.get("net.ipv4.conf.veth0.rp_filter") == "2"
        # a dot in an interface name is printed as a slash
        assert s.get("net.ipv4.conf.veth/7.rp_filter") == "1"
        # a tab inside the value is kept
        assert s.get("net.ipv4.ip_local_port_range") == "32768\t60999"
        # an empty value is a value
        assert s.get("net.ipv4.ip_local_reserved_ports") == ""
        assert s.get("net.ipv4.conf.all.rp_filter") == "0"
        assert s.get("no.such.key") is None

    def test_permission_denied_lines_are_skipped(self) -> None:
        text = read("sysctl-a-nobody.txt")
        denied = [line for line in text.splitlines() if line.startswith("sysctl: permission")]
        assert len(denied) == 12
        s = parse_sysctl(text, "sysctl.txt")
        assert len(s.values) == len(text.splitlines()) - len(denied)
        assert "net.ipv4.tcp_fastopen_key" not in s.values  # unreadable for nobody
        root = parse_sysctl(read("sysctl-a-net.txt"), "root")
        assert all(root.values[k] == v for k, v in s.values.items() if k != "net.ipv4.ip_forward")

    def test_explicit_keys_with_missing_one(self) -> None:
        s = parse_sysctl(read("sysctl-keys.txt"), "sysctl.txt")
        assert s.values == {
            "net.ipv4.ip_forward": "1",
            "net.ipv4.ip_local_port_range": "32768\t60999",
            "net.ipv4.conf.all.rp_filter": "0",
            "net.ipv4.conf.veth/7.rp_filter": "1",
        }


class TestForms:
    def test_key_equals_value_and_conf_syntax(self) -> None:
        text = (
            "# /etc/sysctl.d/99-k8s.conf\n"
            "; old-style comment\n"
            "\n"
            "net.ipv4.ip_forward=1\n"
            "  net.bridge.bridge-nf-call-iptables =  1  \n"
            "-net.ipv4.conf.all.rp_filter = 2\n"
            "net/ipv4/conf/eth0.100/rp_filter = 1\r\n"
            "kernel.core_pattern = |/bin/dump %p x=y\n"
        )
        s = parse_sysctl(text, "99-k8s.conf")
        assert s.values == {
            "net.ipv4.ip_forward": "1",
            "net.bridge.bridge-nf-call-iptables": "1",
            "net.ipv4.conf.all.rp_filter": "2",
            "net.ipv4.conf.eth0/100.rp_filter": "1",
            "kernel.core_pattern": "|/bin/dump %p x=y",
        }

    def test_repeated_keys(self) -> None:
        # consecutive lines: one multi-line value (dev.cdrom.info); later again: later wins
        text = (
            "dev.cdrom.info = CD-ROM information\n"
            "dev.cdrom.info = \n"
            "dev.cdrom.info = drive name:\n"
            "net.ipv4.ip_forward = 0\n"
            "sysctl: cannot stat /proc/sys/x: No such file or directory\n"
            "net.ipv4.ip_forward = 1\n"
        )
        s = parse_sysctl(text, "x")
        assert s.values["dev.cdrom.info"] == "CD-ROM information\n\ndrive name:"
        assert s.values["net.ipv4.ip_forward"] == "1"

    def test_diagnostics_are_skipped(self) -> None:
        text = (
            "sysctl: permission denied on key 'net.ipv6.conf.all.stable_secret'\n"
            "sysctl: cannot stat /proc/sys/net/ipv4/no_such_key: No such file or directory\n"
            'sysctl: reading key "net.ipv6.conf.all.stable_secret"\n'
        )
        assert parse_sysctl(text, "x").values == {}

    @pytest.mark.parametrize(
        "line",
        [
            "net.ipv4.ip_forward",
            "net.ipv4 ip_forward = 1",
            "= 1",
            "Chain INPUT (policy ACCEPT)",
            "sysctl:permission denied",
        ],
    )
    def test_malformed_lines(self, line: str) -> None:
        with pytest.raises(ParseError) as err:
            parse_sysctl(f"net.ipv4.ip_forward = 1\n{line}\n", "node1/sysctl.txt")
        e = err.value
        assert (e.source, e.line, e.text) == ("node1/sysctl.txt", 2, line)
        assert "key = value" in e.expected


_NOISE = st.text(alphabet=st.sampled_from([*" \t\n=./:#;-_abc019", "\u00a0"]), max_size=10)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mutated_real_input_parses_or_raises_parse_error(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["sysctl-a-nobody.txt", "sysctl-keys.txt"]))
    text = read(name)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 30)))
    text = text[:start] + data.draw(_NOISE) + text[end:]
    try:
        result = parse_sysctl(text, "f")
    except ParseError as exc:
        assert exc.source == "f" and exc.line >= 1
    else:
        assert all("\n" not in k and "=" not in k for k in result.values)
