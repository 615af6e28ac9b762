"""The CLI's commands, one module each, as plain functions; ``roe_cli.cli`` registers them.

``options`` holds what commands share, ``render`` everything they print. No module here imports
``roe_cli.cli`` or another command module, SQLAlchemy or ``roe_cli.models``.
"""
