"""pytest loads this file for `tests/` and for `notebooks/*.ipynb` alike: nbval on any machine."""

pytest_plugins = ["tools.course.nbval_portable"]
