"""What a running lab consists of, kept in /run/netsleuth-lab/ so separate CLI calls can find it.

One JSON file per scenario that is up (`seed.json`): its run prefix, the namespace of every node
and pod, the listener processes it started, and the faults/fixes applied so far. The directory
`<prefix>/` beside it holds the listeners' logs. /run is a tmpfs: nothing survives a reboot, and
neither do the namespaces it describes.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from netsleuth.errors import LabError

STATE_DIR = Path("/run/netsleuth-lab")
STATE_DIR_ENV = "NETSLEUTH_LAB_STATE_DIR"  # tests point this at a private directory


def default_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or STATE_DIR)


PREFIX_BASE = "nsl"
# Every namespace and fabric interface the lab creates starts with this: `down --all` and the
# tests' leftover check look for it.
PREFIX_RE = re.compile(r"^nsl[0-9a-f]{4}-")


@dataclass
class ListenerProc:
    name: str  # "admin:6443/tcp" or "admin/web:8080/udp"
    netns: str
    pid: int
    log: str


@dataclass
class LabState:
    scenario: str
    source: str
    prefix: str
    namespaces: dict[str, str] = field(default_factory=dict)  # node or "node/pod" -> netns
    fabric: str | None = None
    listeners: list[ListenerProc] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)

    def netns(self, node: str, pod: str | None = None) -> str:
        key = f"{node}/{pod}" if pod else node
        try:
            return self.namespaces[key]
        except KeyError:
            known = ", ".join(sorted(self.namespaces))
            raise LabError(f"lab {self.scenario}: no node or pod {key!r} (known: {known})") from None

    def run_dir(self, state_dir: Path | None = None) -> Path:
        state_dir = state_dir or default_dir()
        return state_dir / self.prefix

    def all_namespaces(self) -> list[str]:
        names = list(self.namespaces.values())
        if self.fabric:
            names.append(self.fabric)
        return names


def state_path(scenario: str, state_dir: Path | None = None) -> Path:
    state_dir = state_dir or default_dir()
    return state_dir / f"{scenario}.json"


def save(state: LabState, state_dir: Path | None = None) -> None:
    state_dir = state_dir or default_dir()
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(state.scenario, state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def load(scenario: str, state_dir: Path | None = None) -> LabState | None:
    state_dir = state_dir or default_dir()
    path = state_path(scenario, state_dir)
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["listeners"] = [ListenerProc(**x) for x in raw.get("listeners", [])]
        return LabState(**raw)
    except (ValueError, TypeError, KeyError) as exc:
        raise LabError(
            f"lab state {path} is unreadable ({exc}); `netsleuth lab down --all` "
            "removes everything the lab made"
        ) from None


def running(state_dir: Path | None = None) -> list[LabState]:
    state_dir = state_dir or default_dir()
    if not state_dir.is_dir():
        return []
    out = []
    for path in sorted(state_dir.glob("*.json")):
        st = load(path.stem, state_dir)
        if st is not None:
            out.append(st)
    return out


def remove(state: LabState, state_dir: Path | None = None) -> None:
    state_dir = state_dir or default_dir()
    run_dir = state.run_dir(state_dir)
    if run_dir.is_dir():
        for p in run_dir.iterdir():
            p.unlink(missing_ok=True)
        run_dir.rmdir()
    state_path(state.scenario, state_dir).unlink(missing_ok=True)
