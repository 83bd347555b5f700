"""Fixtures shared by the collection tests."""

from collect_replay import replay_api

__all__ = ["replay_api"]
