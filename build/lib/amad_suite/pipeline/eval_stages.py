"""The evaluate and evaluate_teacher stages: score one saved model on its task's test sets.

The stage writes an :class:`amad_suite.records.EvalRecord` (metrics, the blind question prior for VQA teachers,
how answers were decoded, cost) to ``--out`` and the predictions to ``--predictions``; both paths come from argv.
It reads only ``preset``, ``data.scale`` and ``evaluate`` from params: what the model is comes from the model
folder itself.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from amad import evaluation
from amad.errors import ConfigError
from amad.models import load_model
from amad.models.base import DistillModel
from amad.models.cost import count_parameters, measure_latency
from amad_suite.config import parse_setup
from amad_suite.pipeline import examples as E
from amad_suite.pipeline import params as P
from amad_suite.pipeline import setups as S
from amad_suite.pipeline.layout import DataLayout
from amad_suite.records import EvalRecord
from amad_suite.training.run_info import git_state, write_json

log = logging.getLogger(__name__)


def run_evaluate(
    params: dict,
    setup: str,
    method: str,
    seeds_key: str | None,
    data_root: str,
    run_dir: str,
    out_dir: str,
    predictions_dir: str,
    meteor: Any = True,
) -> list[EvalRecord]:
    """Score the students of ``<run_dir>/s<seed>`` for every seed of ``suite.<seeds_key>`` into
    ``<out_dir>/s<seed>.json`` (predictions in ``<predictions_dir>/s<seed>.json``), or, with ``method="teacher"``
    and no seeds, the teacher folder ``run_dir`` into ``<out_dir>/teacher.json``.

    ``meteor``: a running :class:`amad.metrics.MeteorScorer` for caption setups, or True to start one.
    """
    family, task = parse_setup(setup)
    if method in P.RESERVED_METHODS and method != P.TEACHER:
        raise ConfigError(f"--method {method!r} labels a reference row, not a model: use teacher or a method name")
    if (method == P.TEACHER) != (seeds_key is None):
        raise ConfigError("--method teacher takes no --seeds-key, and a student method needs one (seeds)")
    if method == P.TEACHER:
        params = P.declared(params, "evaluate_teacher")
        runs: list[tuple[int | None, Path]] = [(None, Path(run_dir))]
    else:
        params = P.declared(params, "evaluate", seeds=seeds_key)
        runs = [(seed, Path(run_dir) / f"s{seed}") for seed in P.seeds(params, seeds_key)]
    ecfg = P.evaluate(params)  # a bad evaluate.* value fails here, before any model is loaded
    layout = DataLayout(Path(data_root), P.data_scale(params))
    records = []
    for seed, folder in runs:
        model = S.load_teacher(folder) if seed is None else load_model(folder / "model")
        if (model.family, model.task) != (family, task):
            raise ConfigError(
                f"{folder} holds a {model.family} {model.task} model but --setup is {setup!r}: evaluate it with "
                f"--setup {model.family}-{model.task}, or pass the {setup} run's folder"
            )
        record, preds = evaluate_model(model, ecfg, setup, method, seed, layout, preset=params["preset"], meteor=meteor)
        name = "teacher.json" if seed is None else f"s{seed}.json"
        write_json(Path(out_dir) / name, record.to_json())
        write_json(Path(predictions_dir) / name, preds)
        log.info("%s: %s", record.run, {k: v for k, v in record.metrics.items() if isinstance(v, float)})
        records.append(record)
    return records


def size_label(model: DistillModel) -> str:
    """A short description of the architecture for the cost table, e.g. ``enc 3L/dec 3L x 8h, d 128``."""
    layout = model.attention_layout()
    parts = [f"{kind.split('_')[0]} {layers}L x {heads}h" for kind, (layers, heads) in layout.items() if "self" in kind]
    width = model.model.get_input_embeddings().weight.shape[1]
    return f"{', '.join(parts)}, d {width}"


def evaluate_model(
    model: DistillModel,
    ecfg: P.EvalConfig,
    setup: str,
    method: str,
    seed: int | None,
    layout: DataLayout,
    *,
    preset: str,
    meteor: Any = True,
) -> tuple[EvalRecord, dict[str, dict[str, str]]]:
    """Score ``model`` on the task's test sets: (the eval record, test set -> uid -> prediction)."""
    family, task = parse_setup(setup)
    visual = E.visual_store(layout, family, task)
    test_sets = E.test_sets(layout, task)
    rank = task == "vqa" and ecfg.vqa_inference.get(family, "generate") == "rank"
    prior = task == "vqa" and method == P.TEACHER
    train = E.train_examples(layout, task) if rank or prior else []
    answers, inference = None, {"method": "generate", "num_beams": ecfg.num_beams}
    if rank:
        answers = evaluation.answer_list(train, ecfg.rank_answers)
        inference = {"method": "rank", "answers": len(answers), "k": min(ecfg.rank_k, len(answers))}
    metrics: dict[str, Any] = {}
    predictions: dict[str, dict[str, str]] = {}
    signature = None
    for name, examples in test_sets.items():
        preds = evaluation.predict(
            model,
            examples,
            visual,
            batch_size=ecfg.batch_size,
            num_beams=ecfg.num_beams,
            max_new_tokens=ecfg.max_new_tokens[task],
            desc=f"eval {setup} {method} {name}",
            answers=answers,
            rank_k=ecfg.rank_k,
        )
        scores = evaluation.score(task, examples, preds, name if task == "translation" else "", meteor=meteor)
        signature = scores.pop(f"signature/{name}", signature)
        metrics.update(scores)
        predictions[name] = preds
    references = _references(task, train, test_sets, prior, meteor)
    first = next(iter(test_sets.values()))
    latency_batch = model.collate(first[: ecfg.latency_batch], visual, train=False)
    cost = {"params": count_parameters(model.model)} | measure_latency(model, latency_batch, repeats=3, warmup=1)
    layers = model.attention_layout()
    record = EvalRecord(
        run=f"{setup}-teacher" if method == P.TEACHER else f"{setup}-{method}-s{seed}",
        role="teacher" if method == P.TEACHER else "student",
        family=family,
        task=task,
        method=method,
        seed=seed,
        preset=preset,
        metrics=metrics,
        headline=evaluation.HEADLINE[task],
        cost=cost,
        model={
            "layers": {k: list(v) for k, v in layers.items()},
            "heads": next(iter(layers.values()))[1],
            "size": size_label(model),
        },
        inference=inference,
        git_sha=git_state()["sha"],
        signature=signature,
        references=references,
    )
    return record, predictions


def _references(task: str, train: list, test_sets: dict, prior: bool, meteor: Any) -> dict[str, dict]:
    """The teacher record's blind baselines: for VQA, the question prior (a reference row of the VQA table)."""
    if not prior:
        return {}
    scores: dict[str, Any] = {}
    for examples in test_sets.values():
        scores.update(evaluation.score(task, examples, evaluation.question_prior(train, examples), meteor=meteor))
    return {P.QUESTION_PRIOR: scores}
