"""The teacher and distill stages (the stage scripts only parse argv and call these).

Both follow one sequence (:func:`_train_and_save`): keep only the stage's declared params, build the model, train
it with the suite's loop (resumable; a finished run's history survives a failed rerun), then, on the main rank,
save the model atomically, an attention example, and ``run_info.json``, and drop the resume state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from accelerate import PartialState

from amad import losses
from amad.atomic import remove_leftovers
from amad.capture.example import attention_example
from amad.models.base import META_FILE, DistillModel
from amad.training.seed import seed_everything
from amad.training.step import CapturePlan, one_to_one_heads, plan_capture
from amad.training.terms import Term, attention_terms, describe, needs_teacher
from amad.types import Example
from amad_suite.config import TrainConfig, parse_setup
from amad_suite.pipeline import examples as E
from amad_suite.pipeline import params as P
from amad_suite.pipeline import setups as S
from amad_suite.pipeline.io import keep_finished_history, save_npz
from amad_suite.pipeline.layout import DataLayout
from amad_suite.training import checkpoint as ckpt
from amad_suite.training.loop import TrainResult, train
from amad_suite.training.run_info import collect, write_json

log = logging.getLogger(__name__)


def examples_digest(examples: Sequence[Example]) -> str:
    """A short hash of the training examples: a resume checkpoint of other data is never picked up."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(f"{ex.uid}\t{ex.image_id}\t{ex.source}\t{ex.target}\t{ex.target_weight}\n".encode())
    return digest.hexdigest()[:16]


def _train_and_save(
    model: DistillModel,
    layout: DataLayout,
    task: str,
    visual: Any,
    examples: Sequence[Example],
    train_cfg: TrainConfig,
    out: Path,
    *,
    record: dict[str, Any],
    seed: int,
    desc: str,
    progress: bool,
    **train_options: Any,
) -> TrainResult | None:
    """Train ``model`` into ``out`` and write its outputs; returns the result on the main rank, None elsewhere."""
    fingerprint = _fingerprint(record, seed, examples)
    remove_leftovers(out / "model")
    with keep_finished_history(out, f"model/{META_FILE}"):
        result = train(
            model,
            examples,
            visual,
            train_cfg,
            seed=seed,
            work_dir=out,
            run_fingerprint=fingerprint,
            progress=progress,
            desc=desc,
            **train_options,
        )
    if not PartialState().is_main_process:  # the other ranks of a multi-GPU launch are done
        return None
    model.save_pretrained(str(out / "model"))  # atomic: a complete folder or none
    first = next(iter(E.test_sets(layout, task).values()))[0]
    save_npz(out / "attention_example.npz", attention_example(model, first, visual))
    return result


def run_teacher(params: dict, setup: str, data_root: str, out_dir: str, progress: bool = True) -> None:
    """Train the teacher; the evaluate_teacher stage scores it, so evaluation params never retrain a teacher."""
    family, task = parse_setup(setup)
    params = P.declared(params, "teacher", setup=setup)
    cfg, train_cfg = P.teacher_setup(params, setup)
    scale, seed = P.data_scale(params), P.data_seed(params)
    layout, out = DataLayout(Path(data_root), scale), Path(out_dir)
    visual = E.visual_store(layout, family, task)
    examples = E.train_examples(layout, task)
    seed_everything(seed)
    model = S.build_teacher(params, setup, layout, visual)
    record = {"stage": "teacher", "setup": setup, "teacher": dataclasses.asdict(cfg)}
    record["train"] = dataclasses.asdict(train_cfg)
    result = _train_and_save(
        model,
        layout,
        task,
        visual,
        examples,
        train_cfg,
        out,
        record=record,
        seed=seed,
        desc=f"teacher {setup}",
        progress=progress,
        terms=(Term("task", 1.0),),
    )
    if result is None:
        return
    load_report = model.init_report or {"init": "random"}
    info = collect(record, seed, steps=result.steps, train_seconds=result.seconds, load_report=load_report)
    write_json(out / "run_info.json", info)
    ckpt.clear_state(out / "checkpoint", result.steps)


def run_distill(
    params: dict,
    setup: str,
    method: str,
    seeds_key: str,
    data_root: str,
    teacher_dir: str,
    out_dir: str,
    progress: bool = True,
    heads: str = "size",
) -> None:
    """Distil one student per seed of ``suite.<seeds_key>`` into ``<out_dir>/s<seed>``.

    The seeds share one process (one import of torch, one teacher load). A seed whose finished run in its folder
    has the same fingerprint (params, seed, training data) is kept as it is, so adding a seed trains only the new
    one; folders of seeds no longer listed are removed, so the stage's output holds exactly the listed seeds.
    ``heads``: the student head count of the head-ratio matrix ("size": student.setups.<setup>.heads).
    """
    heads_override = P.student_heads(heads)
    family, task = parse_setup(setup)
    params = P.declared(params, "distill", setup=setup, method=method, seeds=seeds_key)
    seeds = P.seeds(params, seeds_key)
    terms = P.method_terms(params, method)
    dcfg, train_cfg, student_cfg = P.distill(params), P.student_train(params, setup), P.student_setup(params, setup)
    layout, out = DataLayout(Path(data_root), P.data_scale(params)), Path(out_dir)
    teacher = S.load_teacher(teacher_dir)
    visual = E.visual_store(layout, family, task)
    examples = E.train_examples(layout, task)
    kinds = tuple(dcfg.kinds.get(family, ())) if attention_terms(terms) else ()
    record = {
        "stage": "distill",
        "setup": setup,
        "method": method,
        "terms": describe(terms),
        "student": dataclasses.asdict(student_cfg),
        "heads": heads_override,
        "distill": {"train": dataclasses.asdict(train_cfg), "layer_map": dcfg.layer_map, "kinds": list(kinds)},
    }
    out.mkdir(parents=True, exist_ok=True)
    for stale in sorted(out.glob("s*")):
        if stale.is_dir() and stale.name not in {f"s{seed}" for seed in seeds}:
            shutil.rmtree(stale)
    for seed in seeds:
        run_out = out / f"s{seed}"
        if _finished(run_out, record, seed, examples):
            log.info("distill %s %s s%d: finished with these params; kept", setup, method, seed)
            continue
        seed_everything(seed)
        student = S.build_student(params, setup, layout, visual, teacher, heads=heads_override)
        plan = plan_capture(student, teacher, kinds, dcfg.layer_map, student_from_teacher=student_cfg.init == "teacher")
        result = _train_and_save(
            student,
            layout,
            task,
            visual,
            examples,
            train_cfg,
            run_out,
            record=record,
            seed=seed,
            desc=f"distill {setup} {method} s{seed}",
            progress=progress,
            terms=terms,
            teacher=teacher if needs_teacher(terms) else None,
            plan=plan,
        )
        if result is None:
            continue
        save_npz(run_out / "alignment.npz", result.alignment)  # empty for methods without an alignment
        info = collect(
            record,
            seed,
            fingerprint=_fingerprint(record, seed, examples),
            steps=result.steps,
            train_seconds=result.seconds,
            resumed_from_step=result.resumed_from,
            final_losses=result.last_parts,
            capture_pairs=[list(p) for p in plan.pairs],
            loss_versions={t.name: losses.get(t.name).version for t in terms if t.name != "task"},
            calibrated_weights=result.weights,
            load_report=student.init_report or {"init": "random"},
            one_to_one_pairing=_pairings(terms, plan),
        )
        write_json(run_out / "run_info.json", info)
        ckpt.clear_state(run_out / "checkpoint", result.steps)


def _fingerprint(record: dict[str, Any], seed: int, examples: Sequence[Example]) -> str:
    return ckpt.fingerprint({**record, "seed": seed, "examples": examples_digest(examples)})


def _finished(run_out: Path, record: dict[str, Any], seed: int, examples: Sequence[Example]) -> bool:
    """True when ``run_out`` holds a complete run of exactly this configuration."""
    info_path = run_out / "run_info.json"
    if not (run_out / "model" / META_FILE).is_file() or not info_path.is_file():
        return False
    try:
        return json.loads(info_path.read_text()).get("fingerprint") == _fingerprint(record, seed, examples)
    except ValueError:
        return False


def _pairings(terms: Sequence[Term], plan: CapturePlan) -> dict[str, dict[str, list[int] | None]]:
    """term -> kind -> the teacher head each student head learns from (one-to-one losses; None = identity)."""
    out = {}
    for term in attention_terms(tuple(terms)):
        if "teacher_heads" in losses.get(term.name).options:
            choice = term.options.get("teacher_heads", "auto")
            out[term.name] = {
                kind: one_to_one_heads(
                    choice, plan.student_heads[kind], plan.teacher_heads[kind], plan.student_from_teacher
                )
                for kind in plan.student_heads
            }
    return out
