"""amad_suite: the benchmark suite around the ``amad`` library (the open_clip / open_clip_train split).

It holds what knows about params.yaml, the data and results layout, DVC and DVCLive: the stage glue
(``pipeline``), the training loop with checkpoints and DVCLive (``training``), reports (``reporting``), downloads
(``fetch``), the mini data builders (``mini``), presets and the CLI. Install it with ``pip install .[suite]``.
"""
