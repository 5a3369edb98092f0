"""Plan and apply against the live store: ``state`` reads what a plan is computed from,
``apply`` executes a plan exactly as it was computed."""
