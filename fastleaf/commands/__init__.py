"""Subcommand modules, in the order ``fastleaf --help`` lists them."""
COMMANDS = ("train", "tta_predict", "evaluate", "check_data", "data_summary", "report", "viz",
            "bench", "synth", "demo", "configs", "doctor")
