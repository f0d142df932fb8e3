"""modelreg: a Kubernetes-native model registry and deployment governor."""

GROUP = "modelreg.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
__version__ = "0.1.0"
