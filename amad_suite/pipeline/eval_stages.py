"""The evaluate and evaluate_teacher stages: score one saved model on its task's test sets.

The stage writes an :class:`amad_suite.records.EvalRecord` (metrics, the blind question prior for VQA teachers,
how answers were decoded, cost) to ``--out`` and the predictions to ``--predictions``; both paths come from argv.
It reads only ``preset``, ``data.scale`` and ``evaluate`` from params: what the model is comes from the model
folder itself. Models are scored and timed on the GPU when there is one (:func:`eval_device`); the cost record
names the device.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import torch

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


def eval_device() -> torch.device:
    """Where models are scored and timed: the first GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
    teacher_dir: str | None = None,
    heads: str = "size",
) -> list[EvalRecord]:
    """Score the students of ``<run_dir>/s<seed>`` for every seed of ``suite.<seeds_key>`` into
    ``<out_dir>/s<seed>.json`` (predictions in ``<predictions_dir>/s<seed>.json``), or, with ``method="teacher"``
    and no seeds, the teacher folder ``run_dir`` into ``<out_dir>/teacher.json``.

    ``meteor``: a running :class:`amad.metrics.MeteorScorer` for caption setups, or True to start one.
    ``teacher_dir``: the students' teacher; with it, each student's head coverage of the teacher (claim C6) is
    measured on ``evaluate.coverage_examples`` validation examples, for the layer pairs the student was distilled on.
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
    device = eval_device()
    teacher = S.load_teacher(teacher_dir).to(device) if teacher_dir and method != P.TEACHER else None
    records = []
    for seed, folder in runs:
        model = (S.load_teacher(folder) if seed is None else load_model(folder / "model")).to(device)
        if (model.family, model.task) != (family, task):
            raise ConfigError(
                f"{folder} holds a {model.family} {model.task} model but --setup is {setup!r}: evaluate it with "
                f"--setup {model.family}-{model.task}, or pass the {setup} run's folder"
            )
        record, preds = evaluate_model(model, ecfg, setup, method, seed, layout, preset=params["preset"], meteor=meteor)
        if seed is not None:  # a student of the head-ratio matrix: its folder is <setup>-<method>-h<heads>
            variant = f"h{heads}"
            record = dataclasses.replace(record, run=f"{setup}-{method}-{variant}-s{seed}", variant=variant)
        if teacher is not None:
            record = dataclasses.replace(record, coverage=_coverage(model, teacher, layout, ecfg, folder))
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
    sets: dict[str, list] | None = None,
) -> tuple[EvalRecord, dict[str, dict[str, str]]]:
    """Score ``model`` on the task's test sets (or on ``sets``, name -> examples, e.g. the validation split when
    tuning): (the eval record, set name -> uid -> prediction)."""
    family, task = parse_setup(setup)
    visual = E.visual_store(layout, family, task)
    test_sets = sets if sets is not None else E.test_sets(layout, task)
    rank = task == "vqa" and ecfg.vqa_inference.get(family, "generate") == "rank"
    baseline = method == P.TEACHER  # the teacher's record also scores the task's blind baseline
    train = E.train_examples(layout, task) if rank or baseline else []
    generation = ecfg.generation(setup, task)  # num_beams, max_new_tokens (+ min_length, max_length)
    answers, inference = None, {"method": "generate"} | {k: v for k, v in generation.items() if k != "max_new_tokens"}
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
            desc=f"eval {setup} {method} {name}",
            answers=answers,
            rank_k=ecfg.rank_k,
            num_workers=ecfg.num_workers,
            **generation,
        )
        scores = evaluation.score(task, examples, preds, name if task == "translation" else "", meteor=meteor)
        signature = scores.pop(f"signature/{name}", signature)
        metrics.update(scores)
        predictions[name] = preds
    references = _references(task, train, test_sets, meteor) if baseline else {}
    first = next(iter(test_sets.values()))
    device = next(model.parameters()).device
    latency_batch = model.collate(first[: ecfg.latency_batch], visual, train=False).to(device)
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


def _references(task: str, train: list, test_sets: dict, meteor: Any) -> dict[str, dict]:
    """The teacher record's blind baseline of the task (P.BASELINES), scored like a model: a reference row of the
    task's table and the bar the no-KD students must clear to qualify a setup for claims."""
    scores: dict[str, Any] = {}
    for name, examples in test_sets.items():
        if task == "vqa":
            preds = evaluation.question_prior(train, examples)
        elif task == "caption":
            preds = evaluation.frequent_caption(train, examples)
        else:
            preds = evaluation.copy_source(examples)
        found = evaluation.score(task, examples, preds, name if task == "translation" else "", meteor=meteor)
        scores.update({k: v for k, v in found.items() if not k.startswith("signature")})
    return {P.BASELINES[task]: scores}


def _coverage(model: DistillModel, teacher: DistillModel, layout: DataLayout, ecfg: P.EvalConfig, folder: Path) -> dict:
    """The student's head coverage of its teacher on validation examples, for the pairs it was distilled on."""
    info_path = folder / "run_info.json"
    pairs = json.loads(info_path.read_text()).get("capture_pairs") if info_path.is_file() else None
    if not pairs:  # no attention term, no layer pairs: nothing was distilled into the maps
        return {}
    visual = E.visual_store(layout, model.family, model.task)
    examples = E.val_examples(layout, model.task)[: ecfg.coverage_examples]
    return evaluation.coverage(model, teacher, examples, visual, [tuple(p) for p in pairs], batch_size=ecfg.batch_size)
