"""Progress of a report build on stderr: one line per finished part, a bar per kind of part.

Lines are printed whenever progress is enabled; bars only on a terminal (in a log
file they would be noise). A bar's ``total`` may be ``None`` when the number of
steps is known only as they come (the errata audit reads its entries itself).
:meth:`Progress.bars` shows several bars at once (a build whose parts run side by
side: one bar per kind, each naming what is running).
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

__all__ = ["Progress"]


class Progress:
    """Lines and bars on stderr, or nothing at all (``enabled=False``)."""

    def __init__(self, enabled: bool):
        self.console = Console(stderr=True, highlight=False) if enabled else None

    @property
    def interactive(self) -> bool:
        """Whether bars are drawn (stderr is a terminal)."""
        return self.console is not None and self.console.is_terminal

    def line(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False)

    def bar(self, label: str, total: int | None) -> "_NullBar":
        if not self.interactive:
            return _NullBar()
        prog = RichProgress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.description}"), console=self.console, transient=True)
        return _RichBar(prog, total)

    def bars(self, kinds: list[tuple[str, int | None]]) -> "_NullBars":
        """Several bars in one display, one per ``(label, total)``; ``update(label, ...)`` moves one."""
        if not self.interactive:
            return _NullBars()
        prog = RichProgress(TextColumn("[bold]{task.fields[label]:<12}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.description}"), console=self.console,
                            transient=True)
        return _RichBars(prog, kinds)


class _NullBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, description: str = "", advance: int = 0) -> None:
        pass


class _RichBar(_NullBar):
    def __init__(self, prog: RichProgress, total: int | None):
        self.prog, self.total = prog, total

    def __enter__(self):
        self.prog.__enter__()
        self.task = self.prog.add_task("", total=self.total)
        return self

    def __exit__(self, *exc):
        return self.prog.__exit__(*exc)

    def update(self, description: str = "", advance: int = 0) -> None:
        self.prog.update(self.task, description=description, advance=advance)


class _NullBars:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, label: str, description: str | None = None, advance: int = 0) -> None:
        pass


class _RichBars(_NullBars):
    def __init__(self, prog: RichProgress, kinds: list[tuple[str, int | None]]):
        self.prog = prog
        self.tasks = {label: prog.add_task("", total=total, label=label) for label, total in kinds}

    def __enter__(self):
        self.prog.__enter__()
        return self

    def __exit__(self, *exc):
        return self.prog.__exit__(*exc)

    def update(self, label: str, description: str | None = None, advance: int = 0) -> None:
        if label in self.tasks:
            kw = {} if description is None else {"description": description}
            self.prog.update(self.tasks[label], advance=advance, **kw)
