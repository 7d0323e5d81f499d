"""The service's request and response bodies: the API contract, and what the OpenAPI document shows.

Requests are strict (``extra="forbid"``, no silent coercion of ``"5"`` into 5), so a typo in a field
name or a wrong type is a 422 that names the field rather than a silently ignored option. The feedback
event model is derived from the one event contract (``aisle.core.schemas.EVENT_SCHEMA``): its fields,
which are required, the allowed event types and the id length limit all come from there, and each event
is then typed by the ingestion parser itself, so the API accepts exactly what the stream ingester will.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from aisle.core.schemas import EVENT_REQUIRED, EVENT_SCHEMA, EVENT_TYPES, MAX_ID_LENGTH

#: Most items one answer may hold, and the default.
MAX_K: Final = 100
DEFAULT_K: Final = 10
#: Most events one /feedback call may carry (bigger batches belong on the Kafka topic directly).
MAX_FEEDBACK_EVENTS: Final = 500


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Id = Field(min_length=1, max_length=MAX_ID_LENGTH)


class RequestContext(Strict):
    """Where the shopper is asking from (logged with the exposure; the policy may use it later)."""

    device: str | None = Field(None, max_length=32, description="web, ios, android, ...")
    country: str | None = Field(None, max_length=8, description="ISO country code, e.g. DE")


class Filters(Strict):
    categories: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Only items in these categories; a path matches itself and everything below it "
        '("Electronics" matches "Electronics>Phones"). Case-insensitive.',
    )
    price_min: float | None = Field(None, ge=0, description="Lowest price, inclusive.")
    price_max: float | None = Field(None, ge=0, description="Highest price, inclusive.")
    exclude_items: list[str] = Field(default_factory=list, max_length=1000, description="Never these.")

    @model_validator(mode="after")
    def _price_range(self) -> Filters:
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError("price_min must not exceed price_max")
        return self


class RecommendRequest(Strict):
    user_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="Unknown shoppers are fine.")
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K, description="How many items to return.")
    context: RequestContext = RequestContext.model_validate({})  # never mutated: safe to share
    filters: Filters = Filters.model_validate({})


class ScoredItem(BaseModel):
    item_id: str
    score: float
    reason: str = Field(description="Why this item, in words a shopper can read.")


class RecommendResponse(BaseModel):
    request_id: str = Field(description="Echo it in /feedback events to tie outcomes to this answer.")
    items: list[ScoredItem]
    model_version: str = Field(description="Registered version that answered, or 'popularity'.")
    variant: str = Field(description="Experiment variant (the alias of the policy that answered).")
    degraded: bool = Field(description="True when part of the context or the model was unavailable.")


class SimilarRequest(Strict):
    item_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K)


class SimilarResponse(BaseModel):
    item_id: str
    items: list[ScoredItem]
    model_version: str
    degraded: bool


class SearchRequest(Strict):
    query: str = Field(min_length=1, max_length=200, description="What the shopper typed, in any words.")
    user_id: str | None = Field(
        None, min_length=1, max_length=MAX_ID_LENGTH, description="Re-rank for this shopper's taste."
    )
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K)

    @model_validator(mode="after")
    def _has_words(self) -> SearchRequest:
        if not self.query.strip():
            raise ValueError("query must contain words")
        return self


class SearchHit(BaseModel):
    item_id: str
    score: float = Field(description="Similarity of meaning (cosine), plus the shopper's taste if any.")
    similarity: float = Field(description="Cosine similarity of the query and the item's text.")
    title: str
    category: str | None
    price: float | None
    in_stock: bool | None
    reason: str


class SearchResponse(BaseModel):
    query: str
    items: list[SearchHit]
    personalized: bool = Field(description="True when the shopper's taste re-ranked the hits.")
    model_version: str | None = Field(description="Policy version whose ranker re-ranked, if any.")
    degraded: bool = Field(description="True when a user_id was given but their context was unavailable.")


# ----------------------------------------------------------------------------- feedback events


def _event_field(field: pa.Field) -> tuple[Any, Any]:
    """The API type of one event-contract column. Timestamps arrive as ISO-8601 text or epoch numbers
    (the parser decides the unit, as for files and Kafka); the rest keep their Arrow type."""
    required = field.name in EVENT_REQUIRED
    default = ... if required else None
    if field.name == "event_type":
        return (Literal[EVENT_TYPES] if required else Literal[EVENT_TYPES] | None), default
    if pa.types.is_timestamp(field.type):
        kind: Any = str | int | float
        return (kind if required else kind | None), Field(default, description="ISO-8601 or epoch")
    if pa.types.is_string(field.type):
        limit = Field(default, min_length=1 if required else 0, max_length=MAX_ID_LENGTH)
        return (str if required else str | None), limit
    if pa.types.is_integer(field.type):
        return (int if required else int | None), default
    if pa.types.is_floating(field.type):
        return (float if required else float | None), default
    raise TypeError(f"no API type for event column {field.name} ({field.type})")  # pragma: no cover


class _EventBase(Strict):
    @model_validator(mode="after")
    def _typed_by_the_ingestion_parser(self) -> _EventBase:
        """Type the event exactly as the stream ingester will (the same reader and parser as for a
        Kafka message), so an event the API accepts is one ingestion can read; reasons name the field."""
        typed = typed_events([self])
        for name in EVENT_REQUIRED:  # "" and the usual missing-value markers read as missing
            if typed[name].null_count:
                raise ValueError(f"{name}: missing or empty")
        return self


def typed_events(events: Sequence[BaseModel]) -> pa.Table:
    """Events as the ingestion parser types them; ValueError with the parser's reason for a bad one."""
    from ingestion.parsing import parse_events
    from ingestion.readers import records_to_table

    typed, rejected = parse_events(records_to_table([e.model_dump() for e in events]), "api:/feedback")
    if rejected.num_rows:
        raise ValueError(str(rejected["reason"][0]))
    return typed


if TYPE_CHECKING:
    FeedbackEvent = _EventBase
else:
    FeedbackEvent = create_model(
        "FeedbackEvent",
        __base__=_EventBase,
        __doc__="One shop event in the event contract (schema v1); request_id ties it to an answer.",
        **{f.name: _event_field(f) for f in EVENT_SCHEMA},
    )


class FeedbackRequest(Strict):
    events: list[FeedbackEvent] = Field(min_length=1, max_length=MAX_FEEDBACK_EVENTS)


class FeedbackAccepted(BaseModel):
    accepted: int = Field(description="Events taken; each reaches the `events` topic exactly once.")
    spooled: int = Field(description="Of those, events waiting on disk for the broker to come back.")


# ----------------------------------------------------------------------------- admin


class ReloadRequest(Strict):
    alias: str = Field("champion", min_length=1, max_length=64)
    version: str | None = Field(None, max_length=32, description="A registered version; default: alias's")


class SmokeRequest(Strict):
    version: str = Field(min_length=1, max_length=32, description="Registered version to try.")
    users: list[str] = Field(default_factory=list, max_length=100)
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K)
