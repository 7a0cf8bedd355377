"""docs/API.md stays true: its Python examples run, in order, against a real server, and its
tables of columns, write rights, allowed values and functions match the database."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from harness import ServerProcess

from pocketbizz.errors import ENUM_CHECKS

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "API.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def code_blocks(text: str, language: str) -> list[tuple[int, str]]:
    """(line of the block's first code line, code) of every fenced block in `language`."""
    return [
        (text.count("\n", 0, m.start(2)) + 1, m[2])
        for m in _FENCE.finditer(text)
        if m[1] == language
    ]


def section(text: str, heading: str) -> str:
    """The prose under a `##`/`###` heading, up to the next heading of the same or a higher
    level (code blocks left out: a `# comment` in them is no heading)."""
    text = _FENCE.sub("", text)
    match = re.search(rf"^(#+) {re.escape(heading)}\n", text, re.M)
    assert match is not None, f"no heading {heading!r} in the guide"
    level = len(match[1])
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, match.end())
    return text[match.end() : end.start() if end else len(text)]


def table_rows(text: str) -> list[list[str]]:
    """Cells of the markdown table rows in `text`, header and rule rows left out."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| ")
    ]
    return [r for r in rows[2:]] if rows else []


def test_python_examples_run_in_order(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GUIDE.read_text()
    blocks = code_blocks(text, "python")
    assert len(blocks) >= 12
    # The first example reads these, as the guide tells a reader to export them.
    monkeypatch.setenv("POCKETBIZZ_URL", server.url)
    monkeypatch.setenv("POCKETBIZZ_ANON_KEY", server.anon_key)
    # The admin examples run as an operator's tool would, with the service key.
    monkeypatch.setenv("POCKETBIZZ_SERVICE_ROLE_KEY", server.service_key)
    namespace: dict[str, Any] = {"__name__": "api_guide"}
    for line, code in blocks:
        # Every example checks what it shows, so a wrong example fails here.
        assert re.search(r"^\s*assert ", code, re.M), f"docs/API.md:{line}: no assert"
        # An example of a refusal must fail when the refusal does not come.
        assert code.count("\nexcept ") == code.count("\nelse:"), f"docs/API.md:{line}"
        # Padding keeps traceback line numbers equal to the guide's.
        compiled = compile("\n" * (line - 1) + code, str(GUIDE), "exec")
        exec(compiled, namespace)
    printed = capsys.readouterr().out
    assert "INV-" in printed and "adjust_stock" in printed


def test_javascript_examples_parse(tmp_path: Path) -> None:
    """The JS examples are fragments (they use the Python examples' data), so they are checked
    as modules node accepts, not run."""
    node = shutil.which("node")
    assert node is not None, "the JS examples are checked with Node.js 20+ (as tests/js)"
    blocks = code_blocks(GUIDE.read_text(), "js")
    assert len(blocks) >= 8
    for line, code in blocks:
        module = tmp_path / f"api-md-{line}.mjs"
        module.write_text(code)
        checked = subprocess.run([node, "--check", str(module)], capture_output=True, text=True)
        assert checked.returncode == 0, f"docs/API.md:{line}: {checked.stderr}"


_TABLES = """
select c.relname, a.attname,
       has_column_privilege('authenticated', c.oid, a.attnum, 'insert') as can_insert,
       has_column_privilege('authenticated', c.oid, a.attnum, 'update') as can_update
from pg_catalog.pg_attribute a
join pg_catalog.pg_class c on c.oid = a.attrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
"""


async def test_every_column_and_its_write_right_is_documented(shipped_schema: asyncpg.Pool) -> None:
    text = section(GUIDE.read_text(), "3. Tables and columns")
    catalog: dict[str, dict[str, str]] = {}
    for row in await shipped_schema.fetch(_TABLES):
        rights = [
            w for w, ok in (("insert", row["can_insert"]), ("update", row["can_update"])) if ok
        ]
        catalog.setdefault(row["relname"], {})[row["attname"]] = ", ".join(rights) or "read-only"
    documented: dict[str, dict[str, str]] = {}
    for table in catalog:
        rows = table_rows(section(text, f"`{table}`"))
        documented[table] = {r[0].strip("`"): r[2].replace("**", "") for r in rows}
    assert documented == catalog


def test_allowed_values_are_the_constraints() -> None:
    rows = table_rows(section(GUIDE.read_text(), "4. Allowed values"))
    documented = {cells[0].strip("`"): tuple(re.findall(r"`([^`]+)`", cells[1])) for cells in rows}
    expected = {
        f"{name.removesuffix('_' + column + '_check')}.{column}": values
        for name, (column, values) in ENUM_CHECKS.items()
    }
    assert documented == expected


async def test_every_callable_function_is_documented(shipped_schema: asyncpg.Pool) -> None:
    names = await shipped_schema.fetch(
        """
        select p.proname from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and has_function_privilege('authenticated', p.oid, 'execute')
        """
    )
    text = section(GUIDE.read_text(), "7. Functions (RPC)")
    for row in names:
        assert f"### `{row['proname']}`" in text, row["proname"]


async def test_function_arguments_are_the_signatures(shipped_schema: asyncpg.Pool) -> None:
    rows = await shipped_schema.fetch(
        """
        select p.proname, p.proargnames[1:p.pronargs] as args
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and has_function_privilege('authenticated', p.oid, 'execute')
        """
    )
    text = GUIDE.read_text()
    for row in rows:
        documented = [r[0].strip("`") for r in table_rows(section(text, f"`{row['proname']}`"))]
        assert documented == list(row["args"]), row["proname"]


async def test_buckets_are_the_databases(shipped_schema: asyncpg.Pool) -> None:
    rows = table_rows(section(GUIDE.read_text(), "9. Storage"))
    documented = {r[0].strip("`"): r[1] == "yes" for r in rows}
    buckets = await shipped_schema.fetch("select id, public from storage.buckets")
    assert documented == {b["id"]: b["public"] for b in buckets}
