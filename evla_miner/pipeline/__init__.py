"""The weekly job that chains every stage under one lock, and ``evla status``."""
