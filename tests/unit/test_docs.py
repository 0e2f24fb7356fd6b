"""Generated docs match what generates them: the CLI reference, the performance and scale tables."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_the_cli_s_own_help():
    sys.path.insert(0, str(ROOT / "scripts"))
    import gen_cli_docs

    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == gen_cli_docs.render(), \
        "docs/cli.md is stale: run `make docs`"


def test_performance_table_is_the_last_benchmark_run():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import write_docs

    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    summary = json.loads((ROOT / "benchmarks" / "results" / "summary.json").read_text(encoding="utf-8"))
    assert write_docs.updated_page(page, summary) == page, "docs/performance.md is stale: run `make bench`"


def test_scale_tables_are_the_last_scale_benchmark_run():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import write_docs

    page = (ROOT / "docs" / "scale.md").read_text(encoding="utf-8")
    sc = json.loads((ROOT / "benchmarks" / "results" / "scale.json").read_text(encoding="utf-8"))
    assert write_docs.updated_scale_page(page, sc) == page, "docs/scale.md is stale: run `make bench`"
    assert "| local:2 |" in page


def test_readme_is_an_entry_point():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for link in ("docs/cli.md", "docs/performance.md", "docs/training-recipe.md", "docs/bundle-format.md",
                 "docs/portability.md", "docs/reliability.md", "docs/scale.md", "examples/node/README.md"):
        assert link in readme and (ROOT / link).is_file(), link
