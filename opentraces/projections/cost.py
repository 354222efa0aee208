"""``metrics.estimated_cost_usd``: what a trace's LLM calls cost.

The cost the agent recorded wins where it recorded one (Pi writes it per
message; the parser sums it into ``metadata.recorded_cost`` with the steps
it covers). Every other step with tokens is priced from the price table
kept as data in the package (``opentraces/data/prices.json``: dated,
versioned, per million tokens), by the step's model (else the trace's).
The estimate is null when a step's model is not in the table: a partial
sum would read as a total. ``metadata.cost`` says where the figure came
from (``recorded``, ``price_table`` or both), the table's date and version,
and the models it could not price. Pure; used by the fold, so ``repair``
re-prices a bucket when the table changes.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson

TABLE = Path(__file__).resolve().parent.parent / "data" / "prices.json"
RATES = (("input_tokens", "input"), ("output_tokens", "output"),
         ("cache_read_tokens", "cache_read"), ("cache_write_tokens", "cache_write"))


@functools.lru_cache(maxsize=1)
def price_table() -> dict[str, Any]:
    return orjson.loads(TABLE.read_bytes())


def price_of(model: str | None, table: dict[str, Any] | None = None) -> dict[str, float] | None:
    """The rates of ``model`` (``provider/model``): the longest key equal to it or followed by ``-``."""
    if not model:
        return None
    models = (table or price_table())["models"]
    best = None
    for key in models:
        if (model == key or model.startswith(key + "-")) and (best is None or len(key) > len(best)):
            best = key
    return models[best] if best is not None else None


def trace_cost(steps: list[dict[str, Any]], model: str | None,
               recorded: dict[str, Any] | None) -> tuple[float | None, dict[str, Any] | None]:
    """(``estimated_cost_usd``, ``metadata.cost``) of a trace's steps (schema-form models)."""
    table = price_table()
    covered = set((recorded or {}).get("steps") or [])
    total = float((recorded or {}).get("usd") or 0.0)
    priced = unpriced = 0
    missing: set[str] = set()
    rates_of: dict[str | None, dict[str, float] | None] = {}  # a trace uses one or two models
    for st in steps:
        usage = st.get("token_usage") or {}
        if st.get("step_index") in covered or not any(usage.get(k) for k, _ in RATES):
            continue
        name = st.get("model") or model
        if name not in rates_of:
            rates_of[name] = price_of(name, table)
        rates = rates_of[name]
        if rates is None:
            unpriced += 1
            missing.add(name or "unknown")
            continue
        priced += 1
        total += sum(usage.get(k, 0) * rates.get(r, 0.0) for k, r in RATES) / 1_000_000
    if not covered and not priced and not unpriced:
        return None, None
    sources = (["recorded"] if covered else []) + (["price_table"] if priced or unpriced else [])
    meta: dict[str, Any] = {"source": "+".join(sources)}
    if priced or unpriced:
        meta["price_table"] = {"date": table["date"], "version": table["version"]}
    if missing:
        meta["unpriced_models"] = sorted(missing)
        return None, meta
    return round(total, 6), meta
