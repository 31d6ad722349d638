"""Prediction: test-time views (``tta``), checkpoint ensembles (``ensemble``), submission files
(``submission``), ``runner.tta_predict`` for test.csv and ``scoring.evaluate_checkpoints``."""

# the view names live here, free of torch, so building the CLI parser stays instant
TTA_NAMES = ("none", "hflip", "flips", "rot90", "five-crop")
DEFAULT_CROP_FRACTION = 0.875
