"""User-facing commands that talk to a cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _install_crds(args: argparse.Namespace) -> int:
    if args.dry_run:
        from modelreg.kube.crds import crd_texts

        try:
            texts = crd_texts(Path(args.dir) if args.dir else None)
        except (OSError, ValueError) as err:
            print(f"error: --dir {args.dir}: {err}", file=sys.stderr)
            return 1
        sys.stdout.write("".join(f"---\n{text}" for text in texts))
        return 0

    from modelreg.kube import credentials
    from modelreg.kube.crds import install_crds

    try:
        api = credentials.kubernetes_api_client(credentials.load(args.kubeconfig, args.context))
    except credentials.CredentialError as err:  # a clean message, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    with api:
        names = install_crds(api, Path(args.dir) if args.dir else None)
    for name in names:
        print(f"customresourcedefinition.apiextensions.k8s.io/{name} established")
    return 0


def _credential_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig file (default: $KUBECONFIG, else the pod's service account, else ~/.kube/config)",
    )
    parser.add_argument("--context", default=None, help="kubeconfig context (default: the current context)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from modelreg.controller.entry import add_parser as add_run

    _credential_arguments(add_run(sub))

    crds = sub.add_parser("install-crds", help="install or upgrade the CRDs (server-side apply)")
    _credential_arguments(crds)
    crds.add_argument("--dir", default=None, help="a crds/ directory (default: generated from this version)")
    crds.add_argument(
        "--dry-run",
        action="store_true",
        help="print the CRDs (YAML) that would be applied; contacts no cluster",
    )
    crds.set_defaults(func=_install_crds)

    from modelreg.cli import completion, verbs

    verbs.add_parsers(sub)
    completion.register(sub)
    from modelreg.dashboard import server as dashboard

    dashboard.register(sub)
