"""Subcommand modules, in the order ``fastleaf --help`` lists them."""
COMMANDS = ("train", "predict", "tta_predict", "evaluate", "blend", "average_checkpoints",
            "pseudo_label", "check_data", "data_summary", "reproduce", "report", "viz", "bench",
            "synth", "demo", "configs", "doctor")
