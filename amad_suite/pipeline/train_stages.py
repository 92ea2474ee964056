"""The teacher, distill and evaluate stages (the stage scripts only parse argv and call these)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from accelerate import PartialState

from amad import evaluation
from amad.atomic import remove_leftovers
from amad.errors import ConfigError
from amad.models import load_model
from amad.models.base import META_FILE, DistillModel
from amad.models.cost import count_parameters, measure_latency
from amad.training.seed import seed_everything
from amad.training.step import one_to_one_heads, plan_capture
from amad.training.terms import Term, attention_terms, needs_teacher
from amad_suite.config import parse_setup
from amad_suite.pipeline import params as P
from amad_suite.pipeline import setups as S
from amad_suite.pipeline.io import keep_finished_history, save_npz
from amad_suite.pipeline.layout import DataLayout
from amad_suite.training import checkpoint as ckpt
from amad_suite.training.loop import train
from amad_suite.training.run_info import collect, write_json

log = logging.getLogger(__name__)


def _data_sizes(params: dict) -> dict:
    return dataclasses.asdict(P.data(params))


def _attention_example(model: DistillModel, layout: DataLayout, task: str, scale: str, visual: Any, path: Path):
    first = next(iter(S.test_sets(layout, task, scale).values()))[0]
    save_npz(path, evaluation.attention_example(model, first, visual))


def run_teacher(params: dict, setup: str, data_root: str, out_dir: str, progress: bool = True) -> None:
    """Train the teacher; the evaluate_teacher stage scores it, so evaluation params never retrain a teacher."""
    P.validate_all(params)
    family, task = parse_setup(setup)
    cfg, train_cfg = P.teacher_setup(params, setup)
    data_cfg = P.data(params)
    layout, out = DataLayout(Path(data_root), P.data(params).scale), Path(out_dir)
    visual = S.visual_store(layout, family, task)
    examples = S.train_examples(layout, task, data_cfg.scale)
    seed_everything(data_cfg.seed)
    model = S.build_teacher(params, setup, layout, visual)
    stage_params = {
        "teacher": dataclasses.asdict(cfg),
        "train": dataclasses.asdict(train_cfg),
        "data": _data_sizes(params),
    }
    fp = ckpt.fingerprint({"stage": "teacher", "setup": setup, **stage_params})
    remove_leftovers(out / "model")
    with keep_finished_history(out, f"model/{META_FILE}"):
        result = train(
            model,
            examples,
            visual,
            train_cfg,
            terms=(Term("task", 1.0),),
            seed=data_cfg.seed,
            work_dir=out,
            run_fingerprint=fp,
            progress=progress,
            desc=f"teacher {setup}",
        )
    if not PartialState().is_main_process:  # other ranks of a multi-GPU launch are done
        return
    model.save_pretrained(str(out / "model"))  # atomic: a complete folder or none
    _attention_example(model, layout, task, data_cfg.scale, visual, out / "attention_example.npz")
    info = collect(
        stage_params,
        data_cfg.seed,
        setup=setup,
        steps=result.steps,
        train_seconds=result.seconds,
        load_report=model.init_report or {"init": "random"},
    )
    write_json(out / "run_info.json", info)
    ckpt.clear_state(out / "checkpoint", result.steps)


def run_distill(
    params: dict,
    setup: str,
    method: str,
    seed: int,
    data_root: str,
    teacher_dir: str,
    out_dir: str,
    progress: bool = True,
) -> None:
    P.validate_all(params)
    family, task = parse_setup(setup)
    terms = P.method_terms(params, method)
    dcfg = P.distill(params)
    train_cfg = P.student_train(params, setup)
    data_cfg = P.data(params)
    layout, out = DataLayout(Path(data_root), P.data(params).scale), Path(out_dir)
    teacher = S.load_teacher(teacher_dir)
    visual = S.visual_store(layout, family, task)
    examples = S.train_examples(layout, task, data_cfg.scale)
    seed_everything(seed)
    student = S.build_student(params, setup, layout, visual, teacher)
    kinds = dcfg.kinds.get(family, ()) if attention_terms(terms) else ()
    from_teacher = P.student_setup(params, setup).init == "teacher"
    plan = plan_capture(student, teacher, tuple(kinds), dcfg.layer_map, student_from_teacher=from_teacher)
    stage_params = {
        "method": method,
        "terms": [dataclasses.asdict(t) for t in terms],
        "student": dataclasses.asdict(P.student_setup(params, setup)),
        "distill": {"train": dataclasses.asdict(train_cfg), "layer_map": dcfg.layer_map, "kinds": list(kinds)},
        "data": _data_sizes(params),
    }
    fp = ckpt.fingerprint({"stage": "distill", "setup": setup, "seed": seed, **stage_params})
    remove_leftovers(out / "model")
    with keep_finished_history(out, f"model/{META_FILE}"):
        result = train(
            student,
            examples,
            visual,
            train_cfg,
            terms=terms,
            seed=seed,
            work_dir=out,
            run_fingerprint=fp,
            teacher=teacher if needs_teacher(terms) else None,
            plan=plan,
            progress=progress,
            desc=f"distill {setup} {method} s{seed}",
        )
    if not PartialState().is_main_process:
        return
    student.save_pretrained(str(out / "model"))
    save_npz(out / "alignment.npz", result.alignment)  # empty for methods without an alignment
    _attention_example(student, layout, task, data_cfg.scale, visual, out / "attention_example.npz")
    info = collect(
        stage_params,
        seed,
        setup=setup,
        steps=result.steps,
        train_seconds=result.seconds,
        resumed_from_step=result.resumed_from,
        final_losses=result.last_parts,
        capture_pairs=[list(p) for p in plan.pairs],
        loss_versions={t.name: getattr(_loss(t.name), "version", None) for t in terms if t.name != "task"},
        calibrated_weights=result.weights,
        load_report=student.init_report or {"init": "random"},
        one_to_one_pairing={
            t.name: {
                kind: one_to_one_heads(
                    t.options.get("teacher_heads", "auto"),
                    plan.student_heads[kind],
                    plan.teacher_heads[kind],
                    from_teacher,
                )
                for kind in plan.student_heads
            }
            for t in attention_terms(terms)
            if "teacher_heads" in _loss(t.name).options
        },
    )
    write_json(out / "run_info.json", info)
    ckpt.clear_state(out / "checkpoint", result.steps)


def _loss(name: str):
    from amad import losses

    return losses.get(name)


def run_evaluate(
    params: dict,
    setup: str,
    method: str,
    seed: int | None,
    data_root: str,
    run_dir: str,
    out: str,
    meteor: Any = True,
) -> None:
    """Score a student (``run_dir`` = its distill folder) or, with ``method="teacher"``, a teacher folder.

    ``meteor``: a running :class:`amad.metrics.MeteorScorer` for caption setups, or True to start one.
    """
    P.validate_all(params)
    if method == P.TEACHER:
        seed, model = None, S.load_teacher(run_dir)
    else:
        P.method_terms(params, method)  # an unknown --method fails here, before the model is loaded
        if seed is None:
            raise ConfigError(f"evaluating method {method!r} needs --seed (only --method teacher has none)")
        model = load_model(Path(run_dir) / "model")
    family, task = parse_setup(setup)
    if (model.family, model.task) != (family, task):
        raise ConfigError(
            f"{run_dir} holds a {model.family} {model.task} model but --setup is {setup!r}: evaluate it with "
            f"--setup {model.family}-{model.task}, or pass the {setup} run's folder"
        )
    evaluate_model(
        params,
        model,
        setup,
        method,
        seed,
        DataLayout(Path(data_root), P.data(params).scale),
        Path(out),
        run_dir=Path(run_dir),
        meteor=meteor,
    )


def evaluate_model(
    params: dict,
    model: DistillModel,
    setup: str,
    method: str,
    seed: int | None,
    layout: DataLayout,
    out: Path,
    *,
    run_dir: Path,
    predictions_out: Path | None = None,
    meteor: Any = True,
) -> dict:
    """Score ``model`` on the task's test sets and write the eval JSON the report stage reads."""
    family, task = parse_setup(setup)
    ecfg, data_cfg = P.evaluate(params), P.data(params)
    visual = S.visual_store(layout, family, task)
    metrics: dict[str, Any] = {}
    predictions: dict[str, dict[str, str]] = {}
    signature = None
    test_sets = S.test_sets(layout, task, data_cfg.scale)
    answers, inference = None, {"method": "generate", "num_beams": ecfg.num_beams}
    rank = task == "vqa" and ecfg.vqa_inference.get(family, "generate") == "rank"
    prior = task == "vqa" and method == P.TEACHER
    train = S.train_examples(layout, task, data_cfg.scale) if rank or prior else []
    if rank:
        answers = evaluation.answer_list(train, ecfg.rank_answers)
        inference = {"method": "rank", "answers": len(answers), "k": min(ecfg.rank_k, len(answers))}
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
    # The teacher's record also carries the blind question-only baseline, a reference row of the VQA table.
    references: dict[str, dict] = {}
    if prior:
        references[P.QUESTION_PRIOR] = {}
        for examples in test_sets.values():
            prior_preds = evaluation.question_prior(train, examples)
            references[P.QUESTION_PRIOR].update(evaluation.score(task, examples, prior_preds))
    first = next(iter(test_sets.values()))
    latency_batch = model.collate(first[: ecfg.latency_batch], visual, train=False)
    cost = {"params": count_parameters(model.model)} | measure_latency(model, latency_batch, repeats=3, warmup=1)
    layout_info = model.attention_layout()
    main_kind = next(iter(layout_info))
    terms = P.method_terms(params, method) if method != P.TEACHER else ()
    tau = next((t.options["tau"] for t in terms if t.is_attention and "tau" in t.options), None)
    run = f"{setup}-teacher" if method == P.TEACHER else f"{setup}-{method}-s{seed}"
    info = collect({}, seed)
    record = {
        "run": run,
        "role": "teacher" if method == P.TEACHER else "student",
        "family": family,
        "task": task,
        "method": method,
        "seed": seed,
        "preset": params.get("preset"),
        "metrics": metrics,
        "references": references,
        "headline": evaluation.HEADLINE[task],
        "inference": inference,
        "cost": cost,
        "model": {
            "layers": {k: list(v) for k, v in layout_info.items()},
            "heads": layout_info[main_kind][1],
            "size": str(
                P.teacher_setup(params, setup)[0].size if method == P.TEACHER else P.student_setup(params, setup).size
            ),
        },
        "distill": {"tau": tau, "loss_terms": {t.name: "auto" if t.auto else t.weight for t in terms}}
        if terms
        else None,
        "git_sha": info["git"]["sha"],
        "signature": signature,
    }
    write_json(out, record)
    write_json(predictions_out or out.parent.parent / "predictions" / out.name, predictions)
    log.info("%s: %s", run, {k: v for k, v in metrics.items() if isinstance(v, float)})
    return record
