"""Write docs/cli.md from the CLI's own ``--help``, so the reference cannot drift from the code.

    python scripts/gen_cli_docs.py       # or: make docs

``tests/unit/test_docs.py`` fails when docs/cli.md differs from what this writes.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from click.testing import CliRunner

from curvae.cli import main as cli

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def render() -> str:
    runner = CliRunner()
    parts = ["# Command-line reference", "",
             "Generated from `curvae COMMAND --help` by `scripts/gen_cli_docs.py`; do not edit by hand.", "",
             "| command | does |", "|---|---|"]
    for name, cmd in cli.commands.items():
        parts.append(f"| [`curvae {name}`](#curvae-{name}) | {cmd.get_short_help_str(limit=120)} |")
    for name in cli.commands:
        res = runner.invoke(cli, [name, "--help"], prog_name="curvae", terminal_width=100)
        assert res.exit_code == 0, res.output
        parts += ["", f"## curvae {name}", "", "```", res.output.rstrip(), "```"]
    return "\n".join(parts) + "\n"


def main() -> None:
    tmp = PAGE.with_name(f".{PAGE.name}.tmp")
    tmp.write_text(render(), encoding="utf-8")
    os.replace(tmp, PAGE)
    click.echo(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
