"""Relearn's development tools: the local stack, the demo and the traffic simulator's commands.

Installed next to ``relearn`` by the Makefile, never into the Airflow image: production runs
against its own Postgres, MLflow and Airflow. Its commands join ``relearn`` through the
``relearn.cli`` entry-point group (``relearn_dev.cli:register``).
"""
