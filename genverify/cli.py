"""The ``genverify`` command line.

Subcommands live in :mod:`genverify.commands`, one module each, discovered at
start-up: a module defines ``add_parser(subparsers)`` that adds its parser and
sets ``func`` (``args -> exit code``). Heavy imports happen inside ``func`` so
``genverify --help`` stays fast.

The library names Python parameters in its errors
(:class:`~genverify.core.ParameterError`); here they become flags: the
option whose ``dest`` is the parameter, or the command module's ``FLAGS``
mapping where the names differ (``{"ks": "--k"}``).

Users' results: ``--results-module MODULE`` (repeatable, before or after the command)
imports ``MODULE`` (a dotted name found from the current directory, or a
``.py`` file) and registers the results, experiments and questions it declares
(:func:`genverify.registry.load_module`); every command then includes them.
The registry also loads the modules of the ``genverify.results`` entry points
and of ``GENVERIFY_RESULTS_MODULES``. A module that cannot be loaded exits 2.

Exit codes: 0 success, 1 a check failed / a claim is wrong, 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from genverify import __version__
from genverify.core import ParameterError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genverify",
        description="Symbolic-plus-numeric verification of the mathematics of generative models.",
    )
    parser.add_argument("--version", action="version", version=f"genverify {__version__}")
    parser.add_argument("--results-module", dest="results_modules", action="append", default=[], metavar="MODULE",
                        help="also load the results, experiments and questions declared by MODULE (a dotted "
                             "module name or a .py file; repeatable)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from genverify import commands

    modules = [importlib.import_module(f"{commands.__name__}.{m.name}")
               for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.add_parser(sub)
    for command in sub.choices.values():  # also after the command; merged with the global ones in main()
        command.add_argument("--results-module", dest="command_results_modules", action="append", default=[],
                             metavar="MODULE", help="also load the results declared by MODULE (see genverify --help)")
    return parser


def flag_names(parser: argparse.ArgumentParser, func, names) -> dict[str, str]:
    """Python parameter -> the flag (or positional metavar) that sets it in ``parser``."""
    declared = getattr(sys.modules.get(getattr(func, "__module__", ""), None), "FLAGS", {})
    out = {}
    for name in names:
        if name in declared:
            out[name] = declared[name]
            continue
        for action in parser._actions:
            if action.dest == name:
                longest = max(action.option_strings, key=len) if action.option_strings else None
                out[name] = longest or (action.metavar if isinstance(action.metavar, str) else name.upper())
                break
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _load_results_modules([*args.results_modules, *args.command_results_modules])
        code = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ParameterError as exc:
        sub = _subparser(parser, args.command)
        message = exc.render(flag_names(sub, args.func, exc.names)) if sub is not None else str(exc)
        print(f"genverify {args.command}: error: {message}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        print(f"genverify {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(code or 0)


def _load_results_modules(modules: list[str]) -> None:
    """Register the users' modules named on the command line (before the command runs)."""
    if not modules:
        return
    # Here, not at the top: the registry imports SymPy, which `genverify --help` must not.
    from genverify import registry

    # As `python -m` does: a module beside the user is found.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    for name in modules:
        registry.load_module(name, source="--results-module")
    # Processes the command starts (report parts, claim checks) load them too.
    named = [m for m in os.environ.get(registry.ENV_VAR, "").split(",") if m.strip()]
    os.environ[registry.ENV_VAR] = ",".join(dict.fromkeys([*named, *modules]))


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(command)
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
