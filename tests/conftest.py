"""Suite-wide test settings."""

from hypothesis import settings

# Property tests check correctness, not speed (speed lives in benchmarks/): no per-example
# deadline, so a loaded CI machine cannot turn a slow example into a failure.
settings.register_profile("netsleuth", deadline=None)
settings.load_profile("netsleuth")
