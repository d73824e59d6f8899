"""One module per group of ``envy-io`` subcommands; envy_io/registry.py lists them."""
