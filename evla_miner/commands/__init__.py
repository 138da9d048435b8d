"""Thin click commands, one module per pipeline stage; ``evla_miner.cli`` registers them."""
