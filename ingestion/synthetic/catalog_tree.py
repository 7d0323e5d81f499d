"""A hand-written category tree for the synthetic shop: top > sub > leaf, with a typical price per leaf.

Each leaf names a companion leaf (what is often bought with it) so "bought together" has a real shape.
"""

from __future__ import annotations

from typing import Final

# top -> sub -> [(leaf, typical price in EUR)]
TREE: Final[dict[str, dict[str, list[tuple[str, float]]]]] = {
    "Electronics": {
        "Phones": [("Smartphones", 420.0), ("Phone Cases", 18.0), ("Chargers", 22.0)],
        "Computers": [("Laptops", 900.0), ("Monitors", 220.0), ("Keyboards", 60.0), ("Mice", 30.0)],
        "Audio": [("Headphones", 90.0), ("Speakers", 120.0), ("Earbuds", 70.0)],
    },
    "Home & Kitchen": {
        "Cookware": [("Frying Pans", 40.0), ("Pots", 55.0), ("Knives", 45.0)],
        "Appliances": [("Coffee Machines", 180.0), ("Kettles", 35.0), ("Blenders", 70.0)],
        "Furniture": [("Desks", 210.0), ("Office Chairs", 160.0), ("Shelves", 80.0)],
    },
    "Fashion": {
        "Women": [("Dresses", 60.0), ("Handbags", 85.0), ("Women's Shoes", 75.0)],
        "Men": [("Shirts", 40.0), ("Jeans", 55.0), ("Men's Shoes", 80.0)],
        "Accessories": [("Watches", 150.0), ("Sunglasses", 45.0), ("Belts", 25.0)],
    },
    "Beauty": {
        "Skincare": [("Moisturizers", 25.0), ("Serums", 35.0), ("Sunscreen", 15.0)],
        "Makeup": [("Lipstick", 18.0), ("Mascara", 14.0), ("Foundation", 28.0)],
        "Hair": [("Shampoo", 9.0), ("Conditioner", 9.0), ("Hair Dryers", 65.0)],
    },
    "Sports & Outdoors": {
        "Fitness": [("Yoga Mats", 25.0), ("Dumbbells", 40.0), ("Resistance Bands", 15.0)],
        "Cycling": [("Bikes", 650.0), ("Bike Helmets", 60.0), ("Bike Lights", 25.0)],
        "Camping": [("Tents", 140.0), ("Sleeping Bags", 70.0), ("Headlamps", 22.0)],
    },
    "Toys & Games": {
        "Building": [("Brick Sets", 45.0), ("Model Kits", 35.0), ("Marble Runs", 30.0)],
        "Board Games": [("Strategy Games", 40.0), ("Party Games", 25.0), ("Puzzles", 18.0)],
        "Outdoor Play": [("Scooters", 70.0), ("Balls", 15.0), ("Water Toys", 20.0)],
    },
    "Books": {
        "Fiction": [("Crime", 14.0), ("Fantasy", 16.0), ("Romance", 12.0)],
        "Non-fiction": [("Cookbooks", 25.0), ("Biographies", 20.0), ("Science", 22.0)],
        "Children": [("Picture Books", 11.0), ("Early Readers", 9.0), ("Activity Books", 8.0)],
    },
    "Grocery": {
        "Drinks": [("Coffee Beans", 14.0), ("Tea", 7.0), ("Juice", 4.0)],
        "Pantry": [("Pasta", 3.0), ("Olive Oil", 11.0), ("Spices", 5.0)],
        "Snacks": [("Chocolate", 4.0), ("Crisps", 3.0), ("Nuts", 8.0)],
    },
}

# leaf -> leaf it is often bought with (the rest fall back to a sibling leaf)
COMPANIONS: Final[dict[str, str]] = {
    "Smartphones": "Phone Cases",
    "Phone Cases": "Chargers",
    "Laptops": "Mice",
    "Monitors": "Keyboards",
    "Keyboards": "Mice",
    "Headphones": "Earbuds",
    "Frying Pans": "Knives",
    "Coffee Machines": "Coffee Beans",
    "Desks": "Office Chairs",
    "Dresses": "Handbags",
    "Shirts": "Jeans",
    "Jeans": "Belts",
    "Shampoo": "Conditioner",
    "Foundation": "Mascara",
    "Yoga Mats": "Resistance Bands",
    "Bikes": "Bike Helmets",
    "Bike Helmets": "Bike Lights",
    "Tents": "Sleeping Bags",
    "Sleeping Bags": "Headlamps",
    "Brick Sets": "Model Kits",
    "Pasta": "Olive Oil",
    "Cookbooks": "Spices",
    "Picture Books": "Activity Books",
}

SYLLABLES: Final = (
    "ka", "lo", "ve", "ri", "sa", "to", "mi", "nu", "de", "ba", "zen", "or", "pla", "tri", "vo",
    "lux", "ne", "qua", "fi", "ro", "sol", "ty", "mar", "quo", "el",
)  # fmt: skip

COUNTRIES: Final = ("DE", "FR", "GB", "NL", "ES", "IT", "PL", "SE", "US", "AT")
COUNTRY_WEIGHTS: Final = (0.24, 0.16, 0.14, 0.08, 0.09, 0.09, 0.06, 0.04, 0.06, 0.04)
DEVICES: Final = ("mobile", "desktop", "tablet")
DEVICE_WEIGHTS: Final = (0.58, 0.33, 0.09)
# share of sessions by hour of day (UTC, evening peak) and by weekday (Mon..Sun, weekend busier)
HOUR_WEIGHTS: Final = (
    1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.2, 3.0, 3.2, 3.3, 3.5,
    3.8, 3.6, 3.4, 3.5, 3.8, 4.4, 5.2, 6.0, 6.3, 5.6, 3.9, 2.1,
)  # fmt: skip
WEEKDAY_WEIGHTS: Final = (0.95, 0.92, 0.94, 0.97, 1.02, 1.12, 1.18)


def leaves() -> list[tuple[str, str, str, float]]:
    """All leaves as (top, sub, leaf, typical price), interleaved across tops so that a small shop
    that uses only the first few leaves still spans several departments."""
    per_top = [
        [(top, sub, leaf, price) for sub, items in subs.items() for leaf, price in items]
        for top, subs in TREE.items()
    ]
    out: list[tuple[str, str, str, float]] = []
    for i in range(max(len(x) for x in per_top)):
        out.extend(group[i] for group in per_top if i < len(group))
    return out
