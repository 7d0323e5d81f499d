"""BentoML serving: retrieve → rank → business rules, similar items, feedback. Not built yet."""
