"""Recipes for the real servers a stack runs: Postgres, Redis, nginx, app replicas."""
