"""Where each data set comes from: one module per source, each registering its sets with ``utils.data.register``.

``utils.data`` imports this package once it has defined the registry, so ``load_dataset`` knows every set;
the modules register in the order the course lists them (the embedded set first).
"""

import importlib

SOURCES = ("mnist5k", "skimage_photos", "torchvision_sets", "cub", "food101", "coco", "oasis")

for _module in SOURCES:
    importlib.import_module(f"utils.sources.{_module}")
