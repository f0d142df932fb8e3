"""modelreg: a Kubernetes-native model registry and deployment governor."""

GROUP = "modelreg.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


def _package_version() -> str:
    """The installed distribution's version (pyproject.toml's ``version``), one source of truth."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("modelreg")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0.0.0+unknown"


__version__ = _package_version()
