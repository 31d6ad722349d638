"""Subcommand modules, in the order ``fastleaf --help`` lists them."""
COMMANDS = ("train", "lr_find", "predict", "tta_predict", "evaluate", "export", "serve",
            "blend", "average_checkpoints", "pseudo_label", "check_data", "audit",
            "data_summary", "reproduce", "report", "explain", "viz", "bench", "synth", "demo",
            "configs", "doctor")
