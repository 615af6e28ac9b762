"""What both sides may import: the core (``roe_cli``) and the sources (``connectors``).

Nothing here imports the mirror's models, the sync engine or the CLI, so a connector can depend on
it without depending on the core. It holds roe's vocabulary and the small tools every layer uses:
errors with their exit codes, domain normalization, the clock.
"""
