"""Deployment tooling: the Helm binary, and manifests/ rendered from charts/modelreg.

Nothing here is used by the operator at run time; ``hack/render-manifests.sh``
(``python -m modelreg.deploy.render``) and the deployment tests use
:mod:`modelreg.deploy.render` so that the plain manifests never drift from the chart.
"""
