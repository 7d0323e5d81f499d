"""The storefront and analyst pages served by the recommendation service at ``/ui``."""
