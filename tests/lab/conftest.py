"""Real-kernel lab tests: they need root, `ip netns` and iptables.

The `lab` fixture skips a test with the exact missing requirement (never silently) and gives it
a private state directory; every test builds and removes its own namespaces, and a lab left up
by a test is removed and reported as a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labutil import lab_missing

from netsleuth.lab import engine
from netsleuth.lab import state as st


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private lab state directory; skips (with the reason) where the lab cannot run."""
    reason = lab_missing()
    if reason:
        pytest.skip(reason)
    state_dir = tmp_path / "lab-state"
    monkeypatch.setenv(st.STATE_DIR_ENV, str(state_dir))
    yield state_dir
    # Whatever a test left up is removed, and counted as a failure.
    left = st.running(state_dir)
    for s in left:
        engine.down(s.scenario, state_dir)
    assert not left, f"test left labs up: {[s.scenario for s in left]}"
