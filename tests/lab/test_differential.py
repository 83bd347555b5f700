"""Kernel-differential tests: random node configurations, the real kernel against the tracer.

- `test_seeded_cases`: NETSLEUTH_DIFF_N (default 300) seeded cases; every disagreement must be
  a known, still open one (tests/lab/data/differential/known.json), so a new simulator bug, a
  fixed one coming back, or a harness regression fails the run. The agreement rate is printed.
- `test_known_disagreement`: each known disagreement replayed from its stored case: the kernel
  must still do what was recorded (that pins the kernel fact), and the simulator must still
  disagree while the entry's status is "open" (strict xfail): when the simulator is fixed, the
  test says so and the entry's status becomes "fixed", after which agreement is required.

Longer runs: `netsleuth lab diff -n 5000 --seed 0` (documented in docs/lab.md).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from labutil import lab_missing

from netsleuth.lab import differential as diff
from netsleuth.lab.generate import Case, generate

pytestmark = pytest.mark.lab

KNOWN_PATH = Path(__file__).parent / "data" / "differential" / "known.json"
KNOWN: list[dict[str, Any]] = json.loads(KNOWN_PATH.read_text())["cases"]
CASES = int(os.environ.get("NETSLEUTH_DIFF_N", "300"))


def _need_lab_and_simulator() -> diff.Tracer:
    reason = lab_missing()
    if reason:
        pytest.skip(reason)
    tracer = diff.simulator()
    assert tracer is not None, "the simulator (datapath.trace, snapshot.node_dir) does not import"
    return tracer


def test_generator_is_seeded_and_round_trips() -> None:
    a, b = generate(42), generate(42)
    assert a == b
    assert Case.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    assert generate(43) != a
    kinds = {p.kind for s in range(20) for p in generate(s).probes}
    assert kinds == {"local", "received"}


def test_frame_checksums() -> None:
    probe = generate(1).probes[2]
    frame = diff.build_frame(probe, b"token")
    ip = frame[14:34]
    assert diff._checksum(ip) == 0  # a correct IPv4 header sums to zero
    parsed = diff._parse_frame("eth0", frame)
    assert parsed is not None
    assert (parsed.src, parsed.dst, parsed.sport, parsed.dport) == (
        probe.src,
        probe.dst,
        probe.sport,
        probe.dport,
    )


def test_seeded_cases(capsys: pytest.CaptureFixture[str]) -> None:
    _need_lab_and_simulator()
    report = diff.run_many(CASES, 0)
    still_open = {(e["seed"], e["probe"]) for e in KNOWN if e["status"] == "open"}
    new = [r for r in report.disagreements if (r.seed, r.index) not in still_open]
    now_agree = [r for r in report.results
                 if (r.seed, r.index) in still_open and r.status == "agree"]
    with capsys.disabled():
        print(f"\nkernel-differential: {report.summary()}")
        for r in now_agree:
            print(f"  now agrees (mark it fixed in {KNOWN_PATH.name}): seed {r.seed} probe {r.index}")
    assert not report.invalid, f"cases the kernel refused (generator bug): {report.invalid}"
    # the target is < 0.5 s a case (measured ~0.4 s); leave room for a busy CI machine
    assert report.seconds / CASES < 0.75, f"cases take {report.seconds / CASES:.2f}s each"
    assert not new, "new disagreements with the kernel:\n" + "\n".join(
        f"{r.summary()}\n{generate(r.seed).script()}" for r in new
    )
    assert report.count("agree") > 0.8 * CASES


def _kernel_view(obs: dict[str, Any]) -> dict[str, Any]:
    keep = ("verdict", "errno", "later_errno", "destination", "interface", "next_hop", "icmp")
    return {k: obs.get(k) for k in keep}


@pytest.mark.parametrize(
    "entry", KNOWN, ids=[f"seed{e['seed']}-probe{e['probe']}-{e['class']}" for e in KNOWN]
)
def test_known_disagreement(entry: dict[str, Any]) -> None:
    tracer = _need_lab_and_simulator()
    case = Case.from_dict(entry["case"])
    with tempfile.TemporaryDirectory() as tmp:
        (result,) = diff.run_case(case, tracer, Path(tmp), only=[entry["probe"]])
    # The kernel still does what was recorded: this is the fact the entry is about.
    assert _kernel_view(result.to_dict()["kernel"]) == _kernel_view(entry["kernel"]), (
        "the kernel changed its answer"
    )
    if entry["status"] == "open":
        # a strict expected failure: it must still disagree, until the simulator is fixed
        assert result.status == "disagree", (
            f"the simulator now agrees: set status 'fixed' for this entry in {KNOWN_PATH}"
        )
        pytest.xfail(f"open: {entry['class']}: {diff.CLASSES.get(entry['class'], '')}")
    assert result.status == "agree", result.summary()
