"""netsleuth: diagnose Kubernetes networking failures by simulating the Linux packet path."""

__version__ = "0.1.0"
