"""provguard: keep AI-generated data out of training sets, and measure what happens when it doesn't.

Sub-packages:
    provguard.watermark   image and text watermark embedders/detectors with exact p-values
    provguard.detectors   synthetic-data detectors (CLIP probe, metadata provenance) and fusion
    provguard.imaging     image I/O, colour conversions and the attack suite shared by tests/benchmarks
    provguard.cli         the `provguard` command line
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("provguard")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
