"""Prediction: test-time views (``tta``), checkpoint ensembles (``ensemble``), submission files
(``submission``), ``runner.tta_predict`` for test.csv and ``scoring.evaluate_checkpoints``."""

# five-crop's side fraction; here, free of torch, for the settings and the exported model info
DEFAULT_CROP_FRACTION = 0.875
