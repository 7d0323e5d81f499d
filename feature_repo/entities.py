"""The keys features hang off. Join keys are the column names of the offline tables (feature_repo.tables)."""

from __future__ import annotations

from feast import Entity, ValueType

USER = "user"
ITEM = "item"
CATEGORY = "category"


def entities() -> dict[str, Entity]:
    """Fresh objects on every call: Feast mutates what it applies, so module-level singletons would leak."""
    return {
        USER: Entity(
            name=USER,
            join_keys=["user_id"],
            value_type=ValueType.STRING,
            description="A shopper (anonymous visitors included); `user_id` of the event schema.",
        ),
        ITEM: Entity(
            name=ITEM,
            join_keys=["item_id"],
            value_type=ValueType.STRING,
            description="A catalog item; `item_id` of the event and catalog schemas.",
        ),
        CATEGORY: Entity(
            name=CATEGORY,
            join_keys=["top_category"],
            value_type=ValueType.STRING,
            description="Top-level catalog category (`A` of the path `A>B>C`).",
        ),
    }
