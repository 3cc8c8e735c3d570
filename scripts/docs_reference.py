"""The documentation site's reference pages, generated from the code so they never drift (issue 42).

Four pages, each from the one place its facts live:

- ``reference/cli.md``: the ``fraudops`` parser (``cli.main.build_parser``), every subcommand walked;
- ``reference/settings-fields.md``: the ``Settings`` class's fields and descriptions (``shared/domain/settings.py``);
- ``reference/openapi.md``: the HTTP API's OpenAPI document (``api.app.create_app().openapi()``);
- ``reference/contract-format.md``: the contract file's pydantic model (``shared/domain/contract_file.py``).

``python scripts/docs_reference.py`` prints ``{"<page path>": "<markdown>"}`` as JSON (what the MkDocs hook
``scripts/docs_hooks.py`` reads); ``--out DIR`` writes the pages under ``DIR`` instead. It runs in the app's
venv (``.venv``), since it imports the app; MkDocs runs in its own (``.venv-docs``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GENERATED = "*Generated from the code at build time by `scripts/docs_reference.py`: do not edit, change the code.*"


def _cell(text: object) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


# --- the command line -------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def walk_commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser below ``parser`` (itself first), with the words that reach it."""
    found = [(path, parser)]
    for name, child in _subcommands(parser).items():
        found += walk_commands(child, (*path, name))
    return found


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def _options(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        names = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.metavar or action.dest}`"
        default = action.default
        shown = "" if default in (None, argparse.SUPPRESS, False) or action.option_strings == [] else f"`{default}`"
        if action.choices is not None:
            shown += (" " if shown else "") + "one of " + ", ".join(f"`{c}`" for c in action.choices)
        rows.append(f"| {names} | {_cell(action.help or '')} | {_cell(shown)} |")
    return rows


def cli_page() -> str:
    from cli.main import build_parser

    root = build_parser()
    lines = [
        "# Command line reference: `fraudops`",
        "",
        "Every subcommand and option of `fraudops`, from its parser (`cli/main.py`). What the commands are for, "
        "with examples: [Command line](commands.md).",
        "",
        GENERATED,
    ]
    for path, parser in walk_commands(root):
        title = " ".join(("fraudops", *path))
        lines += ["", f"{'#' * min(2 + max(len(path) - 1, 0), 4)} `{title}`", ""]
        about = parser.description or (_help_of(parser_of(root, path[:-1]), path[-1]) if path else "")
        if about:
            lines += [_cell(about), ""]
        lines += ["```text", parser.format_usage().strip(), "```"]
        children = _subcommands(parser)
        if children:
            lines += ["", "| subcommand | what |", "|---|---|"]
            lines += [f"| `{name}` | {_cell(_help_of(parser, name))} |" for name in children]
        options = _options(parser)
        if options:
            lines += ["", "| option | what | default |", "|---|---|---|", *options]
    return "\n".join(lines) + "\n"


def parser_of(root: argparse.ArgumentParser, path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = root
    for name in path:
        parser = _subcommands(parser)[name]
    return parser


# --- the settings -----------------------------------------------------------------------------------


def setting_names(field: Any) -> list[str]:
    """The app-setting names a field is read from, in order of precedence."""
    alias = field.validation_alias
    if alias is None:
        return []
    if isinstance(alias, str):
        return [alias]
    return [str(choice) for choice in alias.choices]


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    if not text:
        text = re.sub(r"Annotated\[([^,\[]+), FieldInfo\([^\[]*\[[^\]]*\]\)\]", r"\1", str(annotation))
    return text if text.isidentifier() else re.sub(r"\b(?:[a-z_]+\.)+([A-Za-z_]\w*)", r"\1", text)


def settings_page() -> str:
    from pydantic_core import PydanticUndefined

    from shared.domain.settings import Settings

    lines = [
        "# Settings, from the code",
        "",
        "Every field of the `Settings` class (`shared/domain/settings.py`), the one place the app reads its "
        "settings: the app-setting names it is read from (the first wins), its type, its default and its "
        "description. The hand-written table with more context is [Settings](settings.md).",
        "",
        GENERATED,
        "",
        "| setting | type | default | description |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        names = setting_names(field) or [name]
        default = "" if field.default is PydanticUndefined else f"`{field.default!r}`"
        if field.default_factory is not None:
            default = "(computed)"
        lines.append(
            f"| {', '.join(f'`{n}`' for n in names)} | `{_cell(_type_name(field.annotation))}` | {_cell(default)} "
            f"| {_cell(field.description or '')} |"
        )
    return "\n".join(lines) + "\n"


# --- the HTTP API -----------------------------------------------------------------------------------


def openapi_page() -> str:
    from api.app import create_app

    doc = create_app().openapi()
    lines = [
        "# HTTP API reference (OpenAPI)",
        "",
        f"Every route of the HTTP API (`{doc['info']['title']}` {doc['info'].get('version', '')}), from the "
        "OpenAPI document the app serves at `/api/openapi.json`. What the routes take and give, with "
        "examples: [HTTP API](http-api.md).",
        "",
        GENERATED,
    ]
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            lines += ["", f"## `{method.upper()} {path}`", ""]
            if op.get("summary"):
                lines += [f"**{_cell(op['summary'])}**", ""]
            if op.get("description"):
                lines += [op["description"].strip(), ""]
            params = op.get("parameters", [])
            if params:
                lines += ["| parameter | in | required | description |", "|---|---|---|---|"]
                lines += [
                    f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} "
                    f"| {_cell(p.get('description', ''))} |"
                    for p in params
                ]
                lines.append("")
            body = op.get("requestBody", {}).get("content", {})
            if body:
                lines += ["Request body: " + ", ".join(f"`{c}`" for c in body), ""]
            lines += ["| status | meaning |", "|---|---|"]
            lines += [f"| {code} | {_cell(r.get('description', ''))} |" for code, r in op.get("responses", {}).items()]
    schemas = doc.get("components", {}).get("schemas", {})
    if schemas:
        lines += ["", "## Schemas", "", "| schema | description |", "|---|---|"]
        lines += [f"| `{name}` | {_cell(s.get('description', ''))} |" for name, s in schemas.items()]
    return "\n".join(lines) + "\n"


# --- the contract file ------------------------------------------------------------------------------


def contract_models() -> list[type[Any]]:
    """The contract file's model and every model it nests, the file's top level first."""
    from pydantic import BaseModel

    from shared.domain.contract_file import ContractSpec

    found: list[type[Any]] = []

    def visit(model: type[Any]) -> None:
        if model in found:
            return
        found.append(model)
        for field in model.model_fields.values():
            for arg in _flatten(field.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    visit(arg)

    visit(ContractSpec)
    return found


def _flatten(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    return [a for arg in args for a in _flatten(arg)]


def contract_page() -> str:
    lines = [
        "# Contract file format",
        "",
        "Every key of a contract file (`contracts/*.yaml`), from its pydantic model "
        "(`shared/domain/contract_file.py`): unknown keys are refused. How to write one: "
        "[Bring your own data](../bring-your-own-data.md); what the types become: "
        "[Datasets](../concepts/datasets.md); the `behaviour` section: [Behaviour](../behaviour.md).",
        "",
        GENERATED,
    ]
    for model in contract_models():
        lines += ["", f"## `{model.__name__}`", ""]
        doc = (model.__doc__ or "").strip()
        if doc:
            lines += [_cell(doc), ""]
        lines += ["| key | type | required | default | description |", "|---|---|---|---|---|"]
        for name, field in model.model_fields.items():
            key = field.alias or name
            required = field.is_required()
            default = "" if required or field.default_factory is not None else f"`{field.default!r}`"
            lines.append(
                f"| `{key}` | `{_cell(_type_name(field.annotation))}` | {'yes' if required else 'no'} "
                f"| {_cell(default)} | {_cell(field.description or '')} |"
            )
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """Every generated page: its path under docs/ and its Markdown."""
    return {
        "reference/cli.md": cli_page(),
        "reference/settings-fields.md": settings_page(),
        "reference/openapi.md": openapi_page(),
        "reference/contract-format.md": contract_page(),
    }


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    args.add_argument("--out", type=Path, help="write the pages under this folder instead of printing JSON")
    ns = args.parse_args(argv)
    generated = pages()
    if ns.out is None:
        sys.stdout.write(json.dumps(generated))
        return 0
    for path, text in generated.items():
        target = ns.out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
