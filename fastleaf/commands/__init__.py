"""Subcommand modules, in the order ``fastleaf --help`` lists them."""
COMMANDS = ("train", "predict", "tta_predict", "evaluate", "export", "serve", "blend",
            "average_checkpoints", "pseudo_label", "check_data", "data_summary", "report", "viz",
            "bench", "synth", "demo", "configs", "doctor")
