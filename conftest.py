"""pytest configuration shared by unit tests and notebook runs (nbval)."""

import os

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("COURSE_PROFILE", "smoke")


def pytest_collectstart(collector):
    # Progress bars and warnings go to stderr; they differ run to run and are never compared.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)
