"""Subcommand modules, in the order ``fastleaf --help`` lists them."""
COMMANDS = ("train", "synth", "demo")
