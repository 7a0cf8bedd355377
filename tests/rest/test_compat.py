"""PostgREST compatibility found by the official clients' suites (issue 8 C, issue 13 REST,
issue 14 B): each answer is compared with what PostgreSQL itself returns for the same SQL,
run as the same tenant. The test table and functions are created while the server runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from harness import ServerProcess
from rest.support import Tenant, run_sql, sign_up

SETUP = """
create table public.rest_compat (
    business_owner_id uuid not null default auth.uid()
                      references public.users (business_owner_id) on delete cascade,
    id bigint generated always as identity,
    iso char(2) not null,
    name text,
    span int4range,
    tags text[] not null default '{}',
    qty integer not null default 7,
    primary key (business_owner_id, id),
    unique (business_owner_id, iso)
);
select pb_internal.protect_tenant_table('rest_compat');
grant select, insert, update, delete on public.rest_compat to authenticated;
grant select on public.rest_compat to service_role;
create sequence public.rest_compat_calls;
grant usage on sequence public.rest_compat_calls to authenticated;
create function public.rest_compat_rows() returns setof public.rest_compat
language plpgsql volatile as $$
begin
    perform nextval('public.rest_compat_calls');
    return query select * from public.rest_compat order by iso;
end $$;
create function public.rest_compat_touch(v text) returns integer
language plpgsql volatile as $$ begin return length(v); end $$;
create function public.rest_compat_write(v text) returns integer
language plpgsql volatile as $$
begin
    insert into public.rest_compat (iso, name) values (v, 'written');
    return 1;
end $$;
create function public.rest_compat_null() returns integer
language sql stable as $$ select null::integer $$;
create function public.rest_compat_over(a integer) returns text
language sql immutable as $$ select 'int' $$;
create function public.rest_compat_over(a text) returns text
language sql immutable as $$ select 'text' $$;
create function public.rest_compat_label(r public.rest_compat) returns text
language sql immutable as $$ select r.iso || ':' || coalesce(r.name, '?') $$;
grant execute on function public.rest_compat_rows(), public.rest_compat_touch(text),
    public.rest_compat_write(text), public.rest_compat_null(), public.rest_compat_over(integer),
    public.rest_compat_over(text), public.rest_compat_label(public.rest_compat) to authenticated;
grant execute on function public.rest_compat_touch(text) to service_role;
"""

TEARDOWN = """
drop function public.rest_compat_rows(), public.rest_compat_touch(text),
    public.rest_compat_write(text), public.rest_compat_null(), public.rest_compat_over(integer),
    public.rest_compat_over(text), public.rest_compat_label(public.rest_compat);
drop table public.rest_compat;
drop sequence public.rest_compat_calls;
"""

ROWS: list[dict[str, Any]] = [
    {"iso": "DZ", "name": "Algeria", "span": "[1,5)", "tags": ["is:open", "priority:low"]},
    {"iso": "DE", "name": "Germany", "span": "[3,10)", "tags": ["is:open"]},
    {"iso": "D", "name": "a,b (c)", "span": "[8,12)", "tags": ["priority:low", "x"]},
    {"iso": "MY", "name": "Malaysia", "span": None, "tags": []},
]


@pytest.fixture(scope="module")
def compat(server: ServerProcess, owner_dsn: str) -> Iterator[Tenant]:
    tenant = sign_up(server)
    headers = _headers(server, tenant.access_token)
    url = f"{server.url}/rest/v1/rest_compat"
    run_sql(owner_dsn, f"do $do$ begin {_body(SETUP)} end $do$")
    deadline = time.monotonic() + 10
    while httpx.get(url, headers=headers).status_code != 200:
        assert time.monotonic() < deadline, "the schema cache did not reload"
        time.sleep(0.05)
    res = httpx.post(url, headers=headers, json=ROWS)
    assert res.status_code == 201, res.text
    yield tenant
    run_sql(owner_dsn, f"do $do$ begin {_body(TEARDOWN)} end $do$")


def _body(sql: str) -> str:
    """DDL for a DO block: statements as they are, `$$` bodies re-quoted, selects performed."""
    return sql.replace("$$", "$f$").replace("select pb_internal", "perform pb_internal")


def _headers(server: ServerProcess, token: str, **extra: str) -> dict[str, str]:
    return {"apikey": server.anon_key, "Authorization": f"Bearer {token}", **extra}


@pytest.fixture(scope="module")
def get(server: ServerProcess, compat: Tenant) -> Callable[..., httpx.Response]:
    def call(path: str, *, token: str | None = None, **params: str) -> httpx.Response:
        headers = _headers(server, token or compat.access_token)
        return httpx.get(f"{server.url}/rest/v1{path}", headers=headers, params=params)

    return call


def _isos(server: ServerProcess, tenant: Tenant, where: str, *args: Any) -> list[str]:
    """What PostgreSQL answers for `where`, as the tenant (RLS applies), in iso order."""
    rows = run_sql(
        server.owner_dsn,
        f"select iso from public.rest_compat where {where} order by iso",
        *args,
        as_user=tenant.id,
    )
    return [r[0] for r in rows]


def _api_isos(res: httpx.Response) -> list[str]:
    assert res.status_code == 200, res.text
    return [r["iso"] for r in res.json()]


# -- issue 8 C.1–C.3: filters ----------------------------------------------------------------


def test_char_n_filters_compare_the_whole_value(
    server: ServerProcess, compat: Tenant, get: Callable[..., httpx.Response]
) -> None:
    expected = _isos(server, compat, "iso = 'DZ'")
    assert expected == ["DZ"]
    assert _api_isos(get("/rest_compat", select="iso", iso="eq.DZ")) == expected
    expected = _isos(server, compat, "iso in ('DZ', 'D')")
    assert expected == ["D ", "DZ"]  # char(2) pads: PostgreSQL's answer, as text
    got = _api_isos(get("/rest_compat", select="iso", iso="in.(DZ,D)", order="iso"))
    assert got == expected


def test_nxl_and_nxr_are_postgrests_operators(
    server: ServerProcess, compat: Tenant, get: Callable[..., httpx.Response]
) -> None:
    right = _isos(server, compat, "span &< '[4,9)'::int4range")  # does not extend to the right
    left = _isos(server, compat, "span &> '[4,9)'::int4range")  # does not extend to the left
    assert right != left
    assert _api_isos(get("/rest_compat", span="nxr.[4,9)", order="iso")) == right
    assert _api_isos(get("/rest_compat", span="nxl.[4,9)", order="iso")) == left


def test_logic_tree_values_keep_braces_quotes_and_parentheses(
    server: ServerProcess, compat: Tenant, get: Callable[..., httpx.Response]
) -> None:
    expected = _isos(server, compat, "tags @> '{is:open,priority:low}'")
    assert expected == ["DZ"]
    got = get("/rest_compat", select="iso", **{"or": "(tags.cs.{is:open,priority:low})"})
    assert _api_isos(got) == expected
    expected = _isos(server, compat, "name = 'a,b (c)' or iso in ('MY', 'DE')")
    got = get(
        "/rest_compat",
        select="iso",
        order="iso",
        **{"or": '(name.eq."a,b (c)",iso.in.(MY,DE),and(tags.cd.{x},tags.ov.{"priority:low"}))'},
    )
    expected = _isos(
        server,
        compat,
        "name = 'a,b (c)' or iso in ('MY', 'DE') or (tags <@ '{x}' and tags && '{priority:low}')",
    )
    assert _api_isos(got) == expected


@pytest.mark.parametrize(
    ("filter_", "where"),
    [
        ("like(any).{D*,*ala*}", "name like any ('{D%,%ala%}')"),
        ("like(all).{*a*,*i*}", "name like all ('{%a%,%i%}')"),
        ("ilike(any).{g*,m*}", "name ilike any ('{g%,m%}')"),
        ("ilike(all).{*A*,*R*}", "name ilike all ('{%A%,%R%}')"),
        ("match(any).{^Al,^Ge}", "name ~ any ('{^Al,^Ge}')"),
        ("imatch(all).{^m,A$}", "name ~* all ('{^m,A$}')"),
        ("eq(any).{Germany,Malaysia}", "name = any ('{Germany,Malaysia}')"),
        ("gt(all).{B,F}", "name > all ('{B,F}')"),
        ("lte(any).{Algeria,B}", "name <= any ('{Algeria,B}')"),
    ],
)
def test_any_all_modifiers_match_postgresql(
    server: ServerProcess,
    compat: Tenant,
    get: Callable[..., httpx.Response],
    filter_: str,
    where: str,
) -> None:
    expected = _isos(server, compat, where)
    assert _api_isos(get("/rest_compat", select="iso", name=filter_, order="iso")) == expected
    negated = _isos(server, compat, f"not ({where})")
    got = get("/rest_compat", select="iso", name=f"not.{filter_}", order="iso")
    assert _api_isos(got) == negated
    got = get("/rest_compat", select="iso", order="iso", **{"or": f"(name.{filter_})"})
    assert _api_isos(got) == expected


def test_quantified_integer_comparison(
    server: ServerProcess, compat: Tenant, get: Callable[..., httpx.Response]
) -> None:
    expected = _isos(server, compat, "qty = any ('{1,7}'::int[])")
    assert _api_isos(get("/rest_compat", select="iso", qty="eq(any).{1,7}", order="iso")) == (
        expected
    )
    bad = get("/rest_compat", select="iso", qty="neq(any).{1}")
    assert bad.status_code == 400 and bad.json()["code"] == "PGRST100"


# -- issue 8 C.4: GET/HEAD on VOLATILE functions -------------------------------------------


def test_get_runs_volatile_functions_read_only(
    server: ServerProcess, compat: Tenant, get: Callable[..., httpx.Response]
) -> None:
    res = get("/rpc/rest_compat_touch", v="abc")
    assert res.status_code == 200, res.text
    assert res.json() == 3
    head = httpx.head(
        f"{server.url}/rest/v1/rpc/rest_compat_touch",
        headers=_headers(server, compat.access_token),
        params={"v": "abc"},
    )
    assert head.status_code == 200 and head.content == b""
    res = get("/rpc/rest_compat_write", v="ZZ")
    assert res.status_code == 405, res.text
    body = res.json()
    assert body["code"] == "25006"
    assert body["message"] == "cannot execute INSERT in a read-only transaction"
    assert _isos(server, compat, "iso = 'ZZ'") == []
    # POST may write (and is rolled back here with tx=rollback, the body still answered).
    res = httpx.post(
        f"{server.url}/rest/v1/rpc/rest_compat_write",
        headers=_headers(server, compat.access_token, Prefer="tx=rollback"),
        json={"v": "ZZ"},
    )
    assert res.status_code == 200, res.text
    assert res.json() == 1
    assert _isos(server, compat, "iso = 'ZZ'") == []


# -- Accept: application/vnd.pgrst.plan ------------------------------------------------------


def test_execution_plan_for_service_role_only(
    server: ServerProcess, compat: Tenant, get: Callable[..., httpx.Response]
) -> None:
    url = f"{server.url}/rest/v1/rest_compat"
    params = {"select": "iso", "iso": "eq.DZ"}
    service = {"apikey": server.anon_key, "Authorization": f"Bearer {server.service_key}"}
    res = httpx.get(
        url, params=params, headers={**service, "Accept": "application/vnd.pgrst.plan+json"}
    )
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith(
        'application/vnd.pgrst.plan+json; for="application/json"'
    )
    [plan] = orjson.loads(res.content)
    assert "rest_compat" in _relations(plan["Plan"])
    assert "Actual Rows" not in plan["Plan"]
    res = httpx.get(
        url,
        params=params,
        headers={**service, "Accept": "application/vnd.pgrst.plan+json; options=analyze|verbose"},
    )
    [plan] = orjson.loads(res.content)
    assert plan["Plan"]["Actual Rows"] == 1 and "Output" in plan["Plan"]
    res = httpx.get(url, params=params, headers={**service, "Accept": "application/vnd.pgrst.plan"})
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/vnd.pgrst.plan+text")
    assert "on rest_compat" in res.text and "cost=" in res.text
    # An RPC's plan (a GET, so read-only even with analyze).
    res = httpx.get(
        f"{server.url}/rest/v1/rpc/rest_compat_touch",
        params={"v": "x"},
        headers={**service, "Accept": "application/vnd.pgrst.plan+json; options=analyze"},
    )
    assert res.status_code == 200, res.text
    assert orjson.loads(res.content)[0]["Plan"]["Node Type"] == "Result"
    res = httpx.get(
        url,
        params=params,
        headers={
            **_headers(server, compat.access_token),
            "Accept": "application/vnd.pgrst.plan+json",
        },
    )
    assert res.status_code == 406 and res.json()["code"] == "PGRST107"


def _relations(node: dict[str, Any]) -> set[str]:
    """Every table an EXPLAIN (FORMAT JSON) plan node and its children scan."""
    found = {node["Relation Name"]} if "Relation Name" in node else set()
    for child in node.get("Plans", []):
        found |= _relations(child)
    return found


# -- issue 13, REST items 7–9 ----------------------------------------------------------------


def test_rpc_with_count_calls_the_function_once(
    server: ServerProcess, compat: Tenant, owner_dsn: str
) -> None:
    def calls() -> int:
        sql = "select case when is_called then last_value else 0 end from public.rest_compat_calls"
        return int(run_sql(owner_dsn, sql)[0][0])

    before = calls()
    res = httpx.post(
        f"{server.url}/rest/v1/rpc/rest_compat_rows",
        headers=_headers(server, compat.access_token, Prefer="count=exact"),
        params={"select": "iso", "iso": "neq.MY", "limit": "2"},
        json={},
    )
    assert res.status_code == 206, res.text
    expected = _isos(server, compat, "iso <> 'MY'")
    assert [r["iso"] for r in res.json()] == expected[:2]
    assert res.headers["content-range"] == f"0-1/{len(expected)}"
    assert calls() == before + 1


def test_to_one_embed_with_its_own_limit(
    compat: Tenant, get: Callable[..., httpx.Response]
) -> None:
    res = get(
        "/rest_compat",
        select="iso,users(business_owner_id)",
        iso="eq.DZ",
        **{"users.limit": "1"},
    )
    assert res.status_code == 200, res.text
    assert res.json() == [{"iso": "DZ", "users": {"business_owner_id": compat.id}}]


def test_overloaded_functions_are_ambiguous(get: Callable[..., httpx.Response]) -> None:
    res = get("/rpc/rest_compat_over", a="1")
    assert res.status_code == 300, res.text
    body = res.json()
    assert body["code"] == "PGRST203"
    assert body["message"].startswith("Could not choose the best candidate function between: ")
    assert "public.rest_compat_over(a => integer)" in body["message"]
    assert "public.rest_compat_over(a => text)" in body["message"]
