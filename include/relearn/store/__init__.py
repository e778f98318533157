"""Relearn's own tables in Postgres: schema migrations and the queries that use them."""
