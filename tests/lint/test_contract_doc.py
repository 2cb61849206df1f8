"""docs/contract.md's settings tables against the settings table in bootstrap/settings/table.py.

The table is the one source; the document is checked against it, so a row added without docs, a
default changed in one place only, or a renamed variable fails here.
"""
from __future__ import annotations

import re
import signal

import pytest

from bootstrap.frozen import MISSING
from bootstrap.settings import fields, parsers, table
from tests.support.paths import REPO

CONTRACT = REPO / "docs" / "contract.md"
START, END = "<!-- settings-tables", "<!-- end settings-tables -->"


def documented_rows() -> dict[str, list[str]]:
    """Variable -> the cells of its row, from the tables between the markers."""
    text = CONTRACT.read_text()
    section = text[text.index(START):text.index(END)]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`([A-Z_]+)`", cells[0]) if line.startswith("|") else None
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} is documented twice in {CONTRACT.name}"
            rows[match.group(1)] = cells
    return rows


def settings_file_keys() -> set[str]:
    """The keys of the 'Settings-file only' table."""
    text = CONTRACT.read_text()
    section = text[text.index("Settings-file only:"):]
    section = section[:section.index("\n\n", section.index("|"))]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))


def doc_default(row: fields.Setting) -> str:
    """How the document writes a row's default."""
    value = row.default
    if row.name == "config_file":  # None in the record: read from DEFAULT_CONFIG when it exists
        return parsers.DEFAULT_CONFIG
    if value is None or value == ():
        return "—"
    if row.name == "stop_signal":
        return signal.Signals(value).name.removeprefix("SIG")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"$APP_HOME/{value}" if row.home_relative else str(value)


ENV_ROWS = [row for row in table.SETTINGS if row.env]


@pytest.mark.parametrize("row", ENV_ROWS, ids=lambda r: r.env)
def test_every_variable_is_documented_with_its_key_and_default(row: fields.Setting) -> None:
    documented = documented_rows()
    assert row.env in documented, f"{row.env} is a setting but {CONTRACT.name} does not document it"
    cells = documented[row.env]
    assert cells[1] == (f"`{row.key}`" if row.key else "—"), f"{row.env}: YAML key column"
    if row.required:
        assert row.default is MISSING and len(cells) == 3, f"{row.env} is required: no default column"
        return
    default = cells[2].strip("`")
    # A setting that is off when unset may say so in words.
    assert default == doc_default(row) or (default == "off" and row.default is None), \
        f"{row.env}: {CONTRACT.name} says default {cells[2]}, the table says {row.default!r}"


def test_no_documented_variable_is_unknown() -> None:
    known = {row.env for row in ENV_ROWS}
    assert sorted(set(documented_rows()) - known) == []


def test_file_only_settings_are_documented() -> None:
    file_only = {row.key for row in table.SETTINGS if row.key and not row.env}
    assert file_only and file_only == settings_file_keys()


def test_aliases_are_documented() -> None:
    app_env = documented_rows()["APP_ENV"][-1]
    for alias, env in parsers.ENV_ALIASES.items():
        assert f"`{alias}`" in app_env and f"`{env}`" in app_env, f"alias {alias} → {env} missing from APP_ENV's row"
