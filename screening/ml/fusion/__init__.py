"""Per-patient baselines and the gated late fusion of the daily mood score (pure, no Django)."""
