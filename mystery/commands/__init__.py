"""CLI command groups, one module per noun; ``mystery.cli`` assembles them."""
