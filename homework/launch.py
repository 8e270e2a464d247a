"""The `homework` console script: starts the PDF render host first when the command
prints handouts, then runs the command (homework.console).

The host imports WeasyPrint and lays out a page before it can render (about a second of
CPU); importing the web app and its commands takes most of another second. Started here,
before either, the two overlap on separate cores instead of one after the other.
"""

import sys

# The commands that render handouts, and the global options that take a value.
RENDERING_COMMANDS = ("export", "serve")
OPTIONS_WITH_VALUE = ("--instance",)


def command_of(args: list[str]) -> str | None:
    """The command the command line runs (None: only options)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def renders(args: list[str]) -> bool:
    """Whether the command line runs a command that renders handouts."""
    return command_of(args) in RENDERING_COMMANDS


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `homework` console script."""
    args = sys.argv[1:] if argv is None else argv
    if renders(args):
        from .render_worker import start_early

        # An export's workers warm up by their first renders, side by side; a server's
        # are forked warm, so that its first handout is as quick as any other.
        start_early(lay_out=command_of(args) != "export")
    from .console import main as run

    run(argv)
