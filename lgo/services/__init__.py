"""Counter use cases. Each one is a single unit of work."""
