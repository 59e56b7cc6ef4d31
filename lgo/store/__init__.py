"""Persistence: SQLAlchemy 2 mappings, the unit of work, migrations."""
