"""S-DNS5: lookups timed at the resolver's 5 s timeout."""

from __future__ import annotations

from netsleuth.diagnose.detectors.symptoms_dns_stall import dns_stalls, stalls

from .sectionbc import run, transcript, transcript_text


def test_time_output_of_a_lookup_in_a_pod_is_attributed_to_its_node() -> None:
    found = run(dns_stalls, transcript("b17_dns_5s.txt"))
    assert [(f.key, f.role.value) for f in found] == [("dns-stall-5s@dev-w5", "symptom")]


def test_curl_namelookup_time() -> None:
    ev = transcript_text("user@w3:~$ curl -s -o /dev/null -w 'namelookup: %{time_namelookup}\\n' "
                         "http://orders\nnamelookup: 5.004113\n")
    assert [s[2] for s in stalls(ev)] == [5.004113]


def test_other_durations_are_not_stalls() -> None:
    ev = transcript_text("user@w3:~$ time nslookup orders\nServer:\t\t10.96.0.10\n\n"
                         "real\t0m2.513s\n")
    assert not stalls(ev)
