"""``python -m amad_suite.launch [accelerate launch options] script [args]``: ``accelerate launch``, warm-started.

The same command line and behaviour as ``accelerate launch`` (accelerate's own ``launch`` command runs it). Only the
start differs: like a stage script (:mod:`amad_suite.warm`), it runs in a child of a warm server that has torch and
accelerate imported already, which saves the launcher's ~2 s of imports on every training stage. The paper preset's
``compute.launcher`` uses it; ``AMAD_WARM=0`` makes it plain ``accelerate launch``.
"""

from amad_suite import warm

if __name__ == "__main__":
    warm.delegate()
    from accelerate.commands.launch import main

    main()
