"""Bringing a team's own model and data to Relearn: draft a config entry, bootstrap, import."""
