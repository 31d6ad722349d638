"""The names fastleaf's options take, each list written once.

The command line's choices and help texts, the library's checks and the code that builds
each name all import these lists.  This module imports nothing, so building the command-line
parser needs no torch; ``tests/test_vocab.py`` ties every list to what the code can build.
"""
# validation metrics, in the order tables show them (train.metrics.classification_metrics)
METRICS = ("acc", "f1_macro", "kappa", "sum")

# data backends a run can name (--loader); auto picks one per device and data size
LOADERS = ("auto", "dali", "workers", "cache-ram", "cache-gpu")
# what loaders.create_loader builds: the named backends and the bench's synthetic batches
BACKENDS = (*LOADERS[1:], "synthetic")
# backend names of an earlier release -> their names now (still accepted, with a note):
# "torchvision" decoded and augmented with albumentations/OpenCV in worker processes
LOADER_ALIASES = {"torchvision": "workers"}

# training augmentation strengths (data.augment.AugmentSpec.train_preset)
AUGMENTS = ("kaggle", "light", "none")

# mixed-precision dtypes (--amp-dtype); auto: bf16 where the device has it, else fp16
AMP_DTYPES = ("auto", "bf16", "fp16")

# test-time views (predict.tta.views)
TTA_NAMES = ("none", "hflip", "flips", "rot90", "five-crop")

# resize filters an exported model's record may name (export.model_info.ModelInfo); fastleaf's
# own loaders resize with antialiased bilinear
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
