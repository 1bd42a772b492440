"""The store (SQLAlchemy models, Alembic migrations in ``migrations/``) and the immutable dataset versions."""
