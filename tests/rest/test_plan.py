"""Plans without a database: a schema cache built by hand, requests parsed as the routes parse
them, and the plans (and plan-time errors) `plan.Planner` makes of them. The last tests render
a plan, to show `sql.py` needs nothing but the plan."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from pocketbizz.errors import ApiError
from pocketbizz.rest.plan import (
    EmbedPlan,
    Filter,
    FilterTree,
    Output,
    Planner,
    ReadPlan,
)
from pocketbizz.rest.query import Query, parse_query
from pocketbizz.rest.rpc import call_statement
from pocketbizz.rest.schema_cache import (
    Argument,
    Column,
    ForeignKey,
    Function,
    SchemaCache,
    Table,
)
from pocketbizz.rest.sql import Builder, mutation_statement, rows_statement

OWNER = "business_owner_id"


def _table(name: str, columns: dict[str, str], pk: tuple[str, ...]) -> Table:
    cols = {n: Column(n, t, n not in pk, None, t.endswith("[]")) for n, t in columns.items()}
    return Table(name, False, cols, pk)


def _cache() -> SchemaCache:
    """A tenant schema in miniature: sales with their items and two FKs to staff (cashier,
    manager), products with tags, a label per product (one-to-one), and functions."""
    key = (OWNER, "id")
    users = _table("users", {OWNER: "uuid", "id": "uuid"}, key)
    users.unique_keys.append((OWNER,))
    staff = _table("staff", {OWNER: "uuid", "id": "uuid", "name": "text"}, key)
    sales = _table(
        "sales",
        {
            OWNER: "uuid",
            "id": "uuid",
            "total": "numeric",
            "channel": "text",
            "meta": "jsonb",
            "cashier_id": "uuid",
            "manager_id": "uuid",
        },
        key,
    )
    items = _table(
        "sale_items",
        {OWNER: "uuid", "id": "uuid", "sale_id": "uuid", "product_id": "uuid", "qty": "integer"},
        key,
    )
    products = _table(
        "products", {OWNER: "uuid", "id": "uuid", "sku": "text", "tags": "text[]"}, key
    )
    products.unique_keys.append((OWNER, "sku"))
    labels = _table("labels", {OWNER: "uuid", "product_id": "uuid", "text": "text"}, (OWNER,))
    labels.primary_key = (OWNER, "product_id")
    margin = Function(
        "margin", (Argument("", "sales", False, False),), "numeric", False, None, False, False, "s"
    )
    sales.computed["margin"] = margin

    def fk(name: str, table: str, cols: tuple[str, ...], ref: str) -> ForeignKey:
        return ForeignKey(name, table, (OWNER, *cols), ref, (OWNER, "id"))

    fks = [
        ForeignKey("sales_owner_fkey", "sales", (OWNER,), "users", (OWNER,)),
        fk("sales_cashier_fkey", "sales", ("cashier_id",), "staff"),
        fk("sales_manager_fkey", "sales", ("manager_id",), "staff"),
        fk("sale_items_sale_fkey", "sale_items", ("sale_id",), "sales"),
        fk("sale_items_product_fkey", "sale_items", ("product_id",), "products"),
        fk("labels_product_fkey", "labels", ("product_id",), "products"),
    ]
    tables = {t.name: t for t in (users, staff, sales, items, products, labels)}
    functions = {
        "top_products": [
            Function(
                "top_products",
                (Argument("n", "integer", True, False),),
                "products",
                True,
                "products",
                True,
                False,
                "s",
            )
        ],
        "add": [
            Function(
                "add",
                (Argument("a", "integer", False, False), Argument("b", "integer", True, False)),
                "integer",
                False,
                None,
                False,
                False,
                "i",
            ),
            Function(
                "add",
                (Argument("a", "numeric", False, False), Argument("c", "numeric", True, False)),
                "numeric",
                False,
                None,
                False,
                False,
                "i",
            ),
        ],
    }
    return SchemaCache(tables, fks, functions)


def _query(text: str) -> Query:
    return parse_query(parse_qsl(text, keep_blank_values=True), aggregates=True)


def _read(table: str, text: str) -> ReadPlan:
    cache = _cache()
    return Planner(cache).read(cache.tables[table], _query(text))


def _error(table: str, text: str) -> ApiError:
    with pytest.raises(ApiError) as err:
        _read(table, text)
    return err.value


# -- reads -------------------------------------------------------------------------------------


def test_read_plan_resolves_fields_embeds_filters_order_and_limits() -> None:
    plan = _read(
        "sales",
        "select=id,total,sale_items(qty,products(sku))&channel=eq.online"
        "&order=total.desc.nullslast&limit=5&offset=10",
    )
    assert plan.table.name == "sales" and (plan.limit, plan.offset) == (5, 10)
    id_, total, items = plan.select
    assert isinstance(id_, Output) and id_.field is not None and id_.field.type == "uuid"
    assert isinstance(total, Output) and total.name == "total"
    assert isinstance(items, EmbedPlan) and items.name == "sale_items"
    assert not items.relationship.to_one and items.junction is None
    # A tenant FK joins on every column, the owner column included.
    assert set(items.relationship.pairs) == {(OWNER, OWNER), ("id", "sale_id")}
    (products,) = items.read.embeds
    assert products.relationship.to_one and products.read.table.name == "products"
    (channel,) = plan.filters
    assert isinstance(channel, Filter) and channel.field.type == "text"
    assert channel.condition.op == "eq" and channel.condition.value == "online"
    (order,) = plan.order
    assert order.field.name == "total" and order.desc and order.nulls == "last"
    assert not plan.aggregated


def test_embedded_level_params_merge_into_their_embed() -> None:
    plan = _read(
        "sales",
        "select=id,lines:sale_items(qty)&lines.qty=gt.1&lines.order=qty.desc&lines.limit=2",
    )
    (lines,) = plan.embeds
    assert lines.name == "lines" and lines.read.limit == 2
    (qty,) = lines.read.filters
    assert isinstance(qty, Filter) and qty.condition.op == "gt"
    assert [o.field.name for o in lines.read.order] == ["qty"]


def test_json_paths_computed_fields_and_logic_trees_get_their_types() -> None:
    plan = _read("sales", "select=meta->a,meta->>b,margin&or=(total.gt.5,margin.lt.1)")
    a, b, margin = plan.select
    assert isinstance(a, Output) and a.field is not None and a.field.type == "jsonb"
    assert isinstance(b, Output) and b.field is not None and b.field.type == "text"
    assert isinstance(margin, Output) and margin.field is not None
    assert margin.field.computed is not None and margin.field.type == "numeric"
    (tree,) = plan.filters
    assert isinstance(tree, FilterTree) and tree.op == "or"
    assert [c.field.name for c in tree.children if isinstance(c, Filter)] == ["total", "margin"]


def test_one_to_one_many_to_one_and_aggregates() -> None:
    plan = _read("products", "select=sku,labels(text)")
    (label,) = plan.embeds
    assert label.relationship.to_one  # the child's FK columns are its key
    grouped = _read("sale_items", "select=product_id,qty.sum()")
    assert grouped.aggregated
    assert [o.aggregate for o in grouped.select if isinstance(o, Output)] == [None, "sum"]


def test_unknown_columns_are_42703_wherever_they_are_named() -> None:
    for text in (
        "select=nope",
        "nope=eq.1",
        "order=nope",
        "select=id,sale_items(nope)",
        "select=id,sale_items(qty)&sale_items.nope=eq.1",
    ):
        error = _error("sales", text)
        assert (error.code, error.status) == ("42703", 400), text
    assert "sales.nope" in _error("sales", "select=nope").message


def test_ambiguous_embed_is_pgrst201_until_hinted() -> None:
    error = _error("sales", "select=id,staff(name)")
    assert (error.code, error.status) == ("PGRST201", 300)
    # PostgREST's PGRST201 body: each candidate's FK and columns, and the hinted spellings.
    assert sorted(error.details, key=lambda d: d["relationship"]) == [
        {
            "cardinality": "many-to-one",
            "embedding": "sales with staff",
            "relationship": f"sales_{role}_fkey using sales(business_owner_id, {role}_id) "
            "and staff(business_owner_id, id)",
        }
        for role in ("cashier", "manager")
    ]
    assert error.hint == (
        "Try changing 'staff' to one of the following: 'staff!sales_cashier_fkey', "
        "'staff!sales_manager_fkey'. Find the desired relationship in the 'details' key."
    )
    (by_name,) = _read("sales", "select=id,staff!sales_manager_fkey(name)").embeds
    assert ("manager_id", "id") in by_name.relationship.pairs
    (by_column,) = _read("sales", "select=id,staff!cashier_id(name)").embeds
    assert ("cashier_id", "id") in by_column.relationship.pairs
    # The FK of the owner column alone never makes an embed ambiguous.
    (owner,) = _read("sales", "select=id,users(id)").embeds
    assert owner.relationship.constraint == "sales_owner_fkey"


def test_other_plan_time_errors() -> None:
    assert _error("sales", "select=id,products(sku)").code == "PGRST200"
    assert _error("sales", "select=id&sale_items.limit=1").code == "PGRST108"
    assert _error("sales", "select=id,...sale_items(qty)").code == "PGRST119"
    assert _error("sale_items", "select=*,qty.sum()").code == "PGRST100"
    assert _error("products", "tags=in.(a,b)").code == "PGRST100"


def test_an_embed_without_columns_only_filters() -> None:
    plan = _read("sales", "select=id,sale_items!inner()&sale_items.qty=gt.2")
    (items,) = plan.embeds
    assert items.inner and not items.selected and len(items.read.filters) == 1


# -- writes and calls ------------------------------------------------------------------------


def test_mutate_plans() -> None:
    cache = _cache()
    planner = Planner(cache)
    products = cache.tables["products"]
    upsert = planner.insert(
        products,
        ["id", "sku"],
        _query("on_conflict=sku&select=sku"),
        missing_default=False,
        resolution="merge-duplicates",
        returning=True,
    )
    # `sku` alone is no key; with the owner column it is one.
    assert upsert.on_conflict == (OWNER, "sku") and upsert.tracks_inserts
    assert upsert.returning is not None and upsert.returning.filters == ()
    update = planner.update(products, ["sku"], _query("id=eq.1"), returning=False)
    assert update.kind == "update" and update.returning is None and len(update.filters) == 1
    with pytest.raises(ApiError) as err:
        planner.insert(
            products, ["nope"], _query(""), missing_default=False, resolution=None, returning=False
        )
    assert err.value.code == "PGRST204"


def test_call_plans() -> None:
    planner = Planner(_cache())
    top = planner.call("top_products", {"n": 3}, None, _query("select=sku"), read_only=True)
    assert top.function.returns_set and top.read_only
    assert top.result is not None and top.result.table.name == "products"
    add = planner.call("add", {"a": 1, "b": 2}, None, _query(""), read_only=False)
    assert add.function.return_type == "integer" and add.result is None
    with pytest.raises(ApiError) as err:
        planner.call("add", {"a": 1}, None, _query(""), read_only=False)
    assert err.value.code == "PGRST203"
    with pytest.raises(ApiError) as err:
        planner.call("nope", {}, None, _query(""), read_only=False)
    assert err.value.code == "PGRST202"


# -- rendering needs only the plan ---------------------------------------------------------


def test_plans_render_without_the_schema_cache() -> None:
    plan = _read("sales", "select=id,sale_items(qty)&channel=eq.online")
    b = Builder(max_rows=100)
    statement = rows_statement(b, plan, plan.table.sql_name, limit=10)
    assert '"public"."sale_items"' in statement and "limit 100" in statement
    assert b.params == ["online"]
    cache = _cache()
    delete = Planner(cache).delete(cache.tables["sales"], _query("id=eq.7"), returning=False)
    b = Builder()
    assert mutation_statement(b, delete).startswith('with _m as (delete from "public"."sales"')
    call = Planner(cache).call("add", {"a": 1, "b": 2}, None, _query(""), read_only=True)
    b = Builder()
    assert call_statement(b, call, max_rows=10, count=False).endswith("as body")
    assert b.params == ["1", "2"]
