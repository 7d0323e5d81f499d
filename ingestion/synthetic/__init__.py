"""The synthetic shop: a category tree, shoppers with latent taste, sessions and funnels, written in the
event schema (a data source like any file or stream, so it lives with ingestion)."""
