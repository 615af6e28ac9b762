"""The CLI's commands, one module each; every module registers its commands on ``roe_cli.cli.app``."""
