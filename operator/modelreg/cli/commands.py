"""User-facing commands that talk to a cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    # The operator talks to the API server through its own aiohttp client. Kopf imports the
    # `kubernetes` package when it is installed (only to recognise its model classes), which
    # costs about 25 MiB of resident memory per operator: make that optional import fail.
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]
    from modelreg.controller.run import main

    return main(args)


def _install_crds(args: argparse.Namespace) -> int:
    from kubernetes import config

    from modelreg.kube.crds import install_crds

    try:
        api = config.new_client_from_config(config_file=args.kubeconfig)
    except Exception as err:  # a clean message, no traceback
        print(f"error: no cluster configured: {err}", file=sys.stderr)
        return 1
    with api:
        names = install_crds(api, Path(args.dir) if args.dir else None)
    for name in names:
        print(f"customresourcedefinition.apiextensions.k8s.io/{name} established")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from modelreg.controller.flags import add_arguments

    run = sub.add_parser("run", help="run the operator")
    add_arguments(run)
    run.set_defaults(func=_run)

    crds = sub.add_parser("install-crds", help="install or upgrade the CRDs (server-side apply)")
    crds.add_argument("--kubeconfig", default=None)
    crds.add_argument("--dir", default=None, help="a crds/ directory (default: generated from this version)")
    crds.set_defaults(func=_install_crds)

    from modelreg.cli.user import register as register_user

    register_user(sub)

    # wait, status --watch, completion (after the user verbs: --watch extends `status`).
    from modelreg.cli import completion, watching

    watching.register(sub)
    completion.register(sub)
    from modelreg.dashboard import server as dashboard

    dashboard.register(sub)
