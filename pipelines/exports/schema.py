"""The published tables' columns: one documented schema for CSV, Parquet and JSONL alike.

Pandas, DuckDB and R read flat tables; the archive's nested records are flattened here
once, so every format of an export has the same columns with the same meaning. Decimals
stay decimals (Parquet `decimal128(38, 18)`; CSV their exact text), times are UTC, and
every rating is one shape: `rating_value` normalised to 0–1 beside what the market showed.
"""

from __future__ import annotations

from typing import Literal

ColumnType = Literal["string", "int", "decimal", "timestamp", "bool"]

PROVENANCE: list[tuple[str, ColumnType]] = [
    ("provenance_url", "string"),
    ("provenance_page_sha256", "string"),
    ("provenance_parser_version", "string"),
    ("provenance_fetched_at", "timestamp"),
]

TABLES: dict[str, list[tuple[str, ColumnType]]] = {
    "runs": [
        ("run", "string"),
        ("source", "string"),
        ("seq", "int"),
        ("status", "string"),
        ("complete", "bool"),
        ("parser_version", "string"),
        ("started_at", "timestamp"),
        ("finished_at", "timestamp"),
        ("pages", "int"),
        ("listings_expected", "int"),
        ("listings_parsed", "int"),
        ("listings_observed", "int"),
        ("listings_new", "int"),
        ("listings_changed", "int"),
        ("listings_delisted", "int"),
        ("vendors_observed", "int"),
        ("feedback_new", "int"),
        ("reasons", "string"),  # "; "-joined
        # the rates the run recorded, as JSON: the market's (page lines, rates page) and,
        # under `table:BASE/QUOTE`, the project rate table's of the run's day
        ("rates_json", "string"),
    ],
    "listings": [
        ("run", "string"),
        ("source", "string"),
        ("key", "string"),
        ("version", "int"),
        ("first_seen_run", "string"),
        ("title", "string"),
        ("category", "string"),  # " > "-joined path
        ("description", "string"),
        ("vendor", "string"),
        ("price_amount", "decimal"),
        ("price_currency", "string"),
        ("price_text", "string"),
        ("usd_amount", "decimal"),
        ("usd_rate", "decimal"),
        ("usd_rate_source", "string"),  # market, rates_page, hint, table ("+"-joined)
        ("usd_rate_path", "string"),  # "RUB→BTC→USD": the chain the rate was derived through
        ("usd_rate_provenance", "string"),  # each step's page URL or table row, "; "-joined
        # the second price the run displayed beside the price ("≈ 0.0021 BTC"); per run,
        # never versioned (it moves with the rate)
        ("price_hint_amount", "decimal"),
        ("price_hint_currency", "string"),
        ("price_hint_text", "string"),
        ("quantity_amount", "decimal"),
        ("quantity_unit", "string"),
        ("quantity_count", "int"),
        ("quantity_text", "string"),
        ("price_per_unit_amount", "decimal"),
        ("price_per_unit_currency", "string"),
        ("price_per_unit_unit", "string"),
        ("tiers_json", "string"),
        ("ships_from", "string"),
        ("ships_from_text", "string"),
        ("ships_to", "string"),  # ";"-joined ISO codes, "*" for worldwide
        ("ships_to_text", "string"),
        # optional facts: null where the source does not read them
        ("listed_earliest", "timestamp"),
        ("listed_latest", "timestamp"),
        ("listed_text", "string"),
        ("updated_earliest", "timestamp"),
        ("updated_latest", "timestamp"),
        ("updated_text", "string"),
        ("in_stock", "bool"),
        ("availability_text", "string"),
        ("sales", "int"),
        ("sales_text", "string"),
        ("escrow", "bool"),
        ("escrow_text", "string"),
        ("finalize_early", "bool"),
        ("finalize_early_text", "string"),
        ("shipping_options_json", "string"),
        ("extra_json", "string"),  # the source's own fields, as shown
        *PROVENANCE,
    ],
    "vendors": [
        ("run", "string"),
        ("source", "string"),
        ("key", "string"),
        ("version", "int"),
        ("first_seen_run", "string"),
        ("name", "string"),
        ("rating_value", "decimal"),
        ("rating_raw", "decimal"),
        ("rating_scale", "decimal"),
        ("rating_text", "string"),
        ("feedback_count", "int"),
        ("joined_earliest", "timestamp"),
        ("joined_latest", "timestamp"),
        ("joined_text", "string"),
        ("ships_from", "string"),
        ("ships_to", "string"),
        ("bio", "string"),
        ("pgp_fingerprint", "string"),
        ("level", "int"),
        ("level_text", "string"),
        ("badges", "string"),  # ";"-joined
        ("sales", "int"),
        ("sales_text", "string"),
        ("extra_json", "string"),
        *PROVENANCE,
    ],
    "feedback": [
        ("run", "string"),  # the run it is published as of
        ("source", "string"),
        ("id", "string"),
        ("listing_key", "string"),
        ("vendor", "string"),  # the listing's vendor in the run it was first seen
        ("price_amount", "decimal"),  # the listing's price then (Soska & Christin)
        ("price_currency", "string"),
        ("usd_amount", "decimal"),
        ("buyer", "string"),
        ("rating_value", "decimal"),
        ("rating_raw", "decimal"),
        ("rating_scale", "decimal"),
        ("rating_text", "string"),
        ("text", "string"),
        ("date_earliest", "timestamp"),
        ("date_latest", "timestamp"),
        ("date_text", "string"),
        ("first_run", "string"),
        ("narrowed_by", "string"),
        *PROVENANCE,
    ],
    "pages": [
        ("run", "string"),
        ("source", "string"),
        ("url", "string"),
        ("status", "int"),
        ("state", "string"),
        ("kind", "string"),
        ("fetched_at", "timestamp"),
        ("sha256", "string"),
        ("size", "int"),
        ("error", "string"),
    ],
}

# Free text that `--no-text` leaves out, as published datasets do.
FREE_TEXT = {"listings": ("description",), "vendors": ("bio",), "feedback": ("text",)}
# Handles that `--pseudonymise KEY` replaces by keyed HMACs.
HANDLES = {"listings": ("vendor",), "vendors": ("key", "name"), "feedback": ("vendor", "buyer")}
