"""The ``genverify`` command line.

Subcommands live in :mod:`genverify.commands`, one module each, discovered at
start-up: a module defines ``add_parser(subparsers)`` that adds its parser and
sets ``func`` (``args -> exit code``). Heavy imports happen inside ``func`` so
``genverify --help`` stays fast.

The library names Python parameters in its errors
(:class:`~genverify.core.ParameterError`); here they become flags: the
option whose ``dest`` is the parameter, or the command module's ``FLAGS``
mapping where the names differ (``{"ks": "--k"}``).

Exit codes: 0 success, 1 a check failed / a claim is wrong, 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from genverify import commands

    modules = [importlib.import_module(f"{commands.__name__}.{m.name}")
               for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.add_parser(sub)
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


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(command)
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
