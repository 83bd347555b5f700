"""Immutable, typed state parsed from evidence.

Every object that came from an input keeps a `SourceRef` (file and line) so that a trace step
or a finding can quote the exact route, rule or log line it rests on. Nothing here does I/O or
knows how the state was collected.
"""
