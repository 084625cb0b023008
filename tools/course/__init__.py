"""Course tooling: JupyterLab and its kernel, the notebooks' sources, figures and expected outputs, nbval on any machine."""
