"""Prediction: test-time views (``tta``), checkpoint ensembles (``ensemble``), submission files
(``submission``), ``runner.tta_predict`` for test.csv and ``scoring.evaluate_checkpoints``."""
