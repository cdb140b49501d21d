"""Frontends read trained models and produce IR; they never write C."""
