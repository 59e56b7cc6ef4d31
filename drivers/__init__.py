"""Hardware access for lgo. Never imports lgo."""
