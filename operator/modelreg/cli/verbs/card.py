"""``modelreg card NAME [-o FILE]``: print (or save) a version's Model Card."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelreg.cli.cluster import RMODELS, connect
from modelreg.cli.errors import CliError
from modelreg.cli.shell import command, connection_args, emit, warn
from modelreg.core.modelcard import CARD_KEY, config_map_name


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("card", help="print (or save) a version's Model Card")
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    p.add_argument("-o", "--output", metavar="FILE", default=None, help="write the card to FILE (UTF-8)")
    connection_args(p)
    p.set_defaults(func=run)


@command
def run(args: argparse.Namespace) -> int:
    from kubernetes.client.exceptions import ApiException

    kube = connect(args, args.namespace)
    with kube.api:
        try:
            cm = kube.core().read_namespaced_config_map(
                config_map_name(args.name), kube.namespace, _request_timeout=kube.timeout
            )
            text = (cm.data or {}).get(CARD_KEY)
        except ApiException as err:
            if err.status != 404:
                raise
            text = None
        if text is None:
            kube.get(RMODELS, args.name)  # a missing model says so
            raise CliError(f"model card for {args.name} not rendered yet")
    if args.output:
        path = Path(args.output)
        path.write_text(text, encoding="utf-8")
        warn(f"wrote the model card of {args.name} to {path}")
    else:
        emit(text.rstrip("\n"))
    return 0
