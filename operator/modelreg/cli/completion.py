"""Shell completion for bash, zsh and fish, with object names completed from the cluster.

``modelreg completion bash|zsh|fish`` prints a script; each script asks
``modelreg __complete WORD...`` (the words after ``modelreg`` up to the cursor, the last
one being the word under the cursor) for the candidates. All the logic is here, in
:func:`candidates`: commands, options, option values (``--for``, ``-o``, ``--to``),
namespaces and contexts, and RegisteredModel or Incident names read from the cluster
with the namespace, kubeconfig and context given on the command line so far.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

HIDDEN = "__complete"
#: Positional NAME of these commands is a RegisteredModel; of `resolve`, an Incident.
MODEL_COMMANDS = ("status", "wait", "card", "record-snapshot", "promote", "approve", "retry", "rollback")
FOR_VALUES = (
    *(f"stage={s}" for s in ("Production", "Sandbox", "Development", "RolledBack", "Archived")),
    *(f"health={h}" for h in ("Healthy", "Degraded", "Critical", "Unknown")),
    *(f"condition={c}" for c in ("Ready", "Stalled", "Reconciling", "GatesPassed", "Degraded", "ServingSynced")),
)

Lister = Callable[[str, dict[str, str | None]], list[str]]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _option_action(parser: argparse.ArgumentParser, option: str) -> argparse.Action | None:
    return parser._option_string_actions.get(option)


def _connection(words: Sequence[str]) -> dict[str, str | None]:
    """--namespace/-n, --kubeconfig and --context given so far (``--x=v`` or ``--x v``)."""
    out: dict[str, str | None] = {"namespace": None, "kubeconfig": None, "context": None}
    names = {"-n": "namespace", "--namespace": "namespace", "--kubeconfig": "kubeconfig", "--context": "context"}
    for i, w in enumerate(words):
        key, eq, value = w.partition("=")
        if key in names and eq:
            out[names[key]] = value
        elif w in names and i + 1 < len(words):
            out[names[w]] = words[i + 1]
    return out


def candidates(parser: argparse.ArgumentParser, words: Sequence[str], lister: Lister | None = None) -> list[str]:
    """What may stand in place of ``words[-1]`` (``words`` are the arguments after ``modelreg``)."""
    words = list(words) or [""]
    cur = words[-1]
    done = words[:-1]
    commands = {k: v for k, v in _subparsers(parser).items() if not k.startswith("__")}

    def match(options: Sequence[str]) -> list[str]:
        return sorted(o for o in dict.fromkeys(options) if o.startswith(cur))

    if not done:
        return match([*commands, "--help", "--version"])
    cmd = done[0]
    sub = commands.get(cmd)
    if sub is None:
        return []
    nested = _subparsers(sub)  # dev-cluster up|down|...
    if nested and len(done) == 1:
        return match(list(nested))
    if nested:
        sub = nested.get(done[1], sub)
    conn = _connection(done)
    prev = done[-1] if len(done) > 1 else ""
    action = _option_action(sub, prev) if prev.startswith("-") else None
    if action is not None and action.nargs != 0:
        if action.dest == "for_":
            return match(FOR_VALUES)
        if action.choices:
            return match([str(c) for c in action.choices])
        if action.dest == "namespace" and lister is not None:
            return match(lister("namespaces", conn))
        if action.dest == "context" and lister is not None:
            return match(lister("contexts", conn))
        return []  # a file or free text: the shell's own completion
    if cur.startswith("-"):
        return match([o for a in sub._actions for o in a.option_strings])
    if cmd == "completion":
        return match(["bash", "zsh", "fish"])
    positional_given = _positionals(sub, done[1:])
    if positional_given == 0 and lister is not None:
        if cmd in MODEL_COMMANDS:
            return match(lister("registeredmodels", conn))
        if cmd == "resolve":
            return match(lister("incidents", conn))
    return []


def _positionals(parser: argparse.ArgumentParser, words: Sequence[str]) -> int:
    """How many positional arguments ``words`` already hold (options and their values skipped)."""
    count, skip = 0, False
    for w in words:
        if skip:
            skip = False
            continue
        if w.startswith("-"):
            action = _option_action(parser, w.partition("=")[0])
            skip = action is not None and action.nargs != 0 and "=" not in w
            continue
        count += 1
    return count


def cluster_lister(what: str, conn: dict[str, str | None]) -> list[str]:
    """Names from the cluster (and contexts from the kubeconfig); nothing on any error, quickly."""
    try:
        if what == "contexts":
            from kubernetes import config

            # the kubernetes package leaves this function unannotated
            contexts, _ = config.list_kube_config_contexts(config_file=conn.get("kubeconfig"))  # type: ignore[no-untyped-call]
            return [c["name"] for c in contexts or []]
        from modelreg.cli.cluster import connect

        args = argparse.Namespace(kubeconfig=conn.get("kubeconfig"), context=conn.get("context"), request_timeout=3.0)
        kube = connect(args, conn.get("namespace"))
        with kube.api:
            if what == "namespaces":
                items = kube.core().list_namespace(_request_timeout=3.0).items
                return [str(i.metadata.name) for i in items if i.metadata is not None]
            return [o["metadata"]["name"] for o in kube.list(what)]
    except Exception:
        return []


# --------------------------------------------------------------------------- scripts

BASH = r"""# modelreg completion for bash: source <(modelreg completion bash)
_modelreg_complete() {
    local cur="${COMP_WORDS[COMP_CWORD]}" line="${COMP_LINE:0:COMP_POINT}"
    local IFS=$'\n'
    COMPREPLY=($(MODELREG_COMP_WORDBREAKS="$COMP_WORDBREAKS" "${COMP_WORDS[0]}" __complete --line "$line" 2>/dev/null))
    if [ ${#COMPREPLY[@]} -eq 0 ] && [[ "$cur" != -* ]]; then
        compopt -o default 2>/dev/null
    fi
}
complete -F _modelreg_complete modelreg kubectl-modelreg
"""

ZSH = r"""#compdef modelreg kubectl-modelreg
# modelreg completion for zsh: source <(modelreg completion zsh), or save as _modelreg in $fpath
_modelreg() {
    local -a reply
    reply=("${(@f)$(${words[1]} __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    reply=(${reply:#})
    if (( ${#reply} )); then
        compadd -Q -- "${reply[@]}"
    else
        _files
    fi
}
if [ "$funcstack[1]" = "_modelreg" ]; then
    _modelreg "$@"
else
    compdef _modelreg modelreg kubectl-modelreg
fi
"""

FISH = r"""# modelreg completion for fish: modelreg completion fish > ~/.config/fish/completions/modelreg.fish
function __modelreg_complete
    set -l tokens (commandline -opc) (commandline -ct)
    $tokens[1] __complete -- $tokens[2..-1] 2>/dev/null
end
complete -c modelreg -f -a '(__modelreg_complete)'
complete -c kubectl-modelreg -f -a '(__modelreg_complete)'
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}


def _bash_words(line: str) -> list[str]:
    """The words of a bash command line up to the cursor; the last one is the word being completed."""
    import shlex

    lex = shlex.shlex(line, posix=True, punctuation_chars=False)
    lex.whitespace_split = True
    lex.commenters = ""
    try:
        words = list(lex)
    except ValueError:  # an open quote: complete the unquoted rest
        words = line.split()
    if not line or line[-1].isspace():
        words.append("")
    return words


def run_complete(args: argparse.Namespace) -> int:
    from modelreg.cli.main import build_parser

    parser = build_parser()
    if args.line is not None:
        words = _bash_words(args.line)[1:]  # drop the command itself
        cur = words[-1] if words else ""
        out = candidates(parser, words, cluster_lister)
        # bash splits the word under the cursor at COMP_WORDBREAKS (= and : among them):
        # answer with the part after the last break, as bash replaces only that part.
        breaks = os.environ.get("MODELREG_COMP_WORDBREAKS", "\"'><=;|&(:")
        cut = max((cur.rfind(c) for c in breaks if c.strip()), default=-1)
        if cut >= 0:
            out = [o[cut + 1 :] for o in out]
    else:
        words = args.words[1:] if args.words[:1] == ["--"] else args.words
        out = candidates(parser, words, cluster_lister)
    sys.stdout.write("".join(f"{o}\n" for o in out))
    return 0


def run_script(args: argparse.Namespace) -> int:
    sys.stdout.write(SCRIPTS[args.shell])
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, fish)",
        description="bash: source <(modelreg completion bash); zsh: source <(modelreg completion zsh); "
        "fish: modelreg completion fish > ~/.config/fish/completions/modelreg.fish. Names of "
        "RegisteredModels, Incidents, namespaces and contexts are completed from the cluster.",
    )
    p.add_argument("shell", choices=sorted(SCRIPTS))
    p.set_defaults(func=run_script)
    hidden = sub.add_parser(HIDDEN)
    hidden.add_argument("--line", default=None)
    hidden.add_argument("words", nargs=argparse.REMAINDER)
    hidden.set_defaults(func=run_complete)
    # argparse lists every sub-parser in the usage line; keep the hidden one out of it.
    sub._choices_actions = [a for a in sub._choices_actions if a.dest != HIDDEN]
