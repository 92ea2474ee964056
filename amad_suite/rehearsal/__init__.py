"""The rehearsal: the paper run in miniature, over loopback, in CI (issue 16 §3).

``python -m amad_suite.rehearsal`` (``make rehearsal``; also ``pytest -k rehearsal``) copies the checkout into a
throwaway git repository, activates the ``rehearsal`` preset (``configs/presets/rehearsal.overlay.yaml`` merged onto
``paper.yaml``: only sizes, step counts and source locations change), builds a miniature copy of every manifest file
in its real format under its real name, serves them on 127.0.0.1 at their manifest URLs' paths, and runs
``dvc repro`` end to end; then it places a file by hand under data/raw, runs ``dvc repro`` again and checks that
nothing was deleted and that nothing but the data stages ran again.

Modules: ``scenes`` (what the miniature data say), ``files`` (the data files in their real formats),
``checkpoints`` (a tiny ``Epoch30.pth`` and ``model_base_capfilt_large.pth`` in the released layouts), ``hub`` (tiny
t5-base / t5-small / BLIP hub folders), ``world`` (all of it, and the rehearsal manifest), ``server`` (the loopback
server: Drive pages, one dropped transfer, one corrupt response), ``run`` (the harness).
"""
