"""A/B experiment analysis: attribution of outcomes to exposures, statistics, reports, calibration."""
