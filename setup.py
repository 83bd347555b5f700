"""Build hook: the packet path's hot modules are compiled with mypyc (docs/performance.md).

The modules stay plain, fully typed Python: an editable install (`pip install -e .`, for
working on the code) and NETSLEUTH_PURE=1 use them as they are; a regular install compiles
them to C extensions, which trace about twice as fast, and falls back to plain Python, with a
warning, where they cannot be built (no C compiler). Everything else is in pyproject.toml.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

# What a trace runs through, packet by packet; compiled together so calls between them are
# direct C calls.
COMPILED = [
    "src/netsleuth/datapath/packet.py",
    "src/netsleuth/datapath/trace_model.py",
    "src/netsleuth/datapath/fib.py",
    "src/netsleuth/datapath/netfilter.py",
    "src/netsleuth/datapath/trace.py",
]


class OptionalBuildExt(build_ext):
    """All or nothing: the compiled modules share one support library, so a partial build
    would not import; without every piece, the install keeps the Python modules alone."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers, a compiler error
            for path in self.get_outputs():
                if os.path.exists(path):
                    os.remove(path)
            print(f"netsleuth: the datapath stays plain Python (could not compile it: {exc})",
                  file=sys.stderr)


def ext_modules() -> list[object]:
    # An editable install must keep running the source as edited: a compiled module beside
    # it would shadow every later change.
    if os.environ.get("NETSLEUTH_PURE") == "1" or "editable_wheel" in sys.argv:
        return []
    from mypyc.build import mypycify

    return list(mypycify(COMPILED, opt_level="3"))


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
