"""The documentation site (issue 42): it builds strictly, the generated reference covers the code, and every
command example in docs/ is either run by a test or marked illustrative (docs/development/docs.md)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MKDOCS = ROOT / ".venv-docs" / "bin" / "mkdocs"
SHELL_FENCES = {"bash", "sh", "shell", "console"}
# Pages whose unmarked command blocks another test runs, as written.
RUN_ELSEWHERE = {"bring-your-own-data.md": "tests/integration/test_byod_guide.py"}


def fenced_blocks(text: str) -> list[tuple[str, str, bool]]:
    """Each fenced block: (language, body, illustrative: the line before it says ``*illustrative*``)."""
    found = []
    for m in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        before = text[: m.start()].rstrip().splitlines()
        found.append((m.group(1), m.group(2), bool(before) and "*illustrative*" in before[-1]))
    return found


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def commands_run_here() -> list[tuple[str, str]]:
    """(page, command line) of every unmarked shell block that no other test runs: this module runs them."""
    found = []
    for page in pages():
        name = page.relative_to(DOCS).as_posix()
        if name in RUN_ELSEWHERE:
            continue
        for lang, body, illustrative in fenced_blocks(page.read_text()):
            if lang in SHELL_FENCES and not illustrative:
                found += [(name, line) for line in body.splitlines() if line.strip() and not line.startswith("#")]
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make docs` as CI runs it: mkdocs build --strict (warnings, broken links and anchors fail it)."""
    if not MKDOCS.exists():
        pytest.fail("no .venv-docs: `make setup` (or `make .venv-docs/.installed`) installs MkDocs")
    out = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    done = subprocess.run(
        [str(MKDOCS), "build", "--strict", "-q", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "FRAUDOPS_DOCS_PYTHON": sys.executable, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    assert time.monotonic() - started < 120, "the strict build should take seconds"
    return out


def _text(html_file: Path) -> str:
    return html_file.read_text()


def test_the_site_builds_strictly_with_every_page(site: Path) -> None:
    for page in pages():
        built = site / page.relative_to(DOCS).with_suffix(".html")
        assert built.exists(), f"{page.relative_to(ROOT)} was not built"
    for generated in ("cli", "settings-fields", "openapi", "contract-format"):
        assert (site / "reference" / f"{generated}.html").exists(), generated
    assert "house plan" in _text(site / "architecture" / "index.html"), "ARCHITECTURE.md is not included"


def test_every_cli_subcommand_is_in_the_reference(site: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from docs_reference import walk_commands

    from cli.main import build_parser

    page = _text(site / "reference" / "cli.html")
    paths = [path for path, _ in walk_commands(build_parser()) if path]
    assert len(paths) > 20
    missing = [" ".join(p) for p in paths if f"fraudops {' '.join(p)}</code>" not in page]
    assert not missing, f"the CLI reference lacks {missing}"


def test_every_setting_is_in_the_reference(site: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from docs_reference import setting_names

    from shared.domain.settings import Settings

    page = _text(site / "reference" / "settings-fields.html")
    names = [n for field in Settings.model_fields.values() for n in setting_names(field)]
    assert len(names) >= len(Settings.model_fields)
    missing = [n for n in names if f"<code>{n}</code>" not in page]
    assert not missing, f"the settings reference lacks {missing}"


def test_every_route_and_contract_key_is_in_the_reference(site: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from docs_reference import contract_models

    from api.app import create_app

    api = _text(site / "reference" / "openapi.html")
    routes = [(m.upper(), p) for p, ops in create_app().openapi()["paths"].items() for m in ops]
    missing = [r for r in routes if f"<code>{r[0]} {r[1]}</code>" not in api]
    assert not missing, f"the HTTP reference lacks {missing}"
    contract = _text(site / "reference" / "contract-format.html")
    keys = [(m.__name__, f.alias or n) for m in contract_models() for n, f in m.model_fields.items()]
    assert not [k for k in keys if f"<code>{k[1]}</code>" not in contract], keys


def test_every_command_example_is_run_by_a_test_or_marked_illustrative() -> None:
    """A shell block in docs/ is illustrative (marked), on a page another test runs, or run below."""
    for page, test in RUN_ELSEWHERE.items():
        assert (DOCS / page).exists() and (ROOT / test).exists(), (page, test)
        assert "fenced_blocks" in (ROOT / test).read_text() or "blocks(" in (ROOT / test).read_text()
    marked = sum(ill for p in pages() for lang, _, ill in fenced_blocks(p.read_text()) if lang in SHELL_FENCES)
    assert marked > 10, "the illustrative marker is not being read"
    assert commands_run_here(), "no command of the docs is run here"


@pytest.mark.parametrize(("page", "command"), commands_run_here(), ids=lambda v: str(v)[:60])
def test_a_documented_command_runs(page: str, command: str) -> None:
    venv_bin = Path(sys.executable).parent
    done = subprocess.run(
        shlex.split(command),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"},
        timeout=120,
    )
    assert done.returncode == 0, f"{page}: `{command}` exited {done.returncode}:\n{done.stderr[-2000:]}"


def test_ci_builds_the_site_and_keeps_it_as_an_artifact() -> None:
    import yaml

    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    steps = [s for job in yaml.safe_load(workflow)["jobs"].values() for s in job["steps"]]
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert any(s.get("run", "").startswith("make docs") for s in steps)
    [site] = [s for s in uploads if s["with"]["path"].rstrip("/") == "site"]
    assert len({s["uses"] for s in uploads}) == 1, "every upload-artifact is pinned to the same commit"
    assert site["with"]["if-no-files-found"] == "error"
