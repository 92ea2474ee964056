"""The teacher and distill stages (the stage scripts only parse argv and call these).

Both follow one sequence (:func:`_train_and_save`): keep only the stage's declared params, build the model, train
it with the suite's loop (resumable; a finished run's history survives a failed rerun), then, on the main rank,
save the model atomically, an attention example, and ``run_info.json``, and drop the resume state.

With ``train.select_on_val`` the loop keeps the weights that score best on the validation split
(:func:`validation`); ``run_info.json`` then records the selected step under ``selection``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from accelerate import PartialState

from amad import evaluation, losses
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
from amad_suite.pipeline.workers import run_each, torch_threads
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


VAL_METRIC = {"vqa": "accuracy", "caption": "CIDEr", "translation": "BLEU"}  # the headline metric, on validation


def validation(layout: DataLayout, task: str, visual: Any, cfg: TrainConfig) -> dict[str, Any]:
    """The loop's ``validate`` and ``metric`` for ``cfg.select_on_val`` (nothing when it is off).

    ``validate(model)``: the task's headline metric on the validation split (its first ``cfg.val_examples``), decoded
    with ``cfg.val_num_beams`` beams and the model's own target length; VQA is generated for every family (BLIP's
    rank inference is for the test sets), captions skip METEOR and SPICE (only CIDEr is needed).
    """
    if not cfg.select_on_val:
        return {}
    examples = E.val_examples(layout, task)[: cfg.val_examples]
    metric = VAL_METRIC[task]

    def validate(model: DistillModel) -> float:
        preds = evaluation.predict(
            model,
            examples,
            visual,
            batch_size=cfg.batch_size,
            num_beams=cfg.val_num_beams,
            max_new_tokens=model.max_target_length,
            progress=False,
            num_workers=cfg.num_workers,
        )
        if task == "caption":
            from amad.metrics import caption_metrics

            refs = {ex.uid: list(ex.references) for ex in examples}
            return float(caption_metrics(preds, refs, meteor=False, spice=False)[metric])
        return float(evaluation.score(task, examples, preds)[metric])

    return {"validate": validate, "metric": f"val {metric}"}


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
    """Train the teacher; the evaluate_teacher stage scores it, so evaluation params never retrain a teacher.

    A finished teacher in ``out_dir`` with the same fingerprint (params, seed, training data) is kept as it is, as a
    distilled seed is (``dvc repro`` removes a stage's outputs first, so this serves direct reruns such as tune's)."""
    family, task = parse_setup(setup)
    params = P.declared(params, "teacher", setup=setup)
    cfg, train_cfg = P.teacher_setup(params, setup)
    scale, seed = P.data_scale(params), P.data_seed(params)
    layout, out = DataLayout(Path(data_root), scale), Path(out_dir)
    visual = E.visual_store(layout, family, task)
    examples = E.train_examples(layout, task)
    record = {"stage": "teacher", "setup": setup, "teacher": dataclasses.asdict(cfg)}
    record["train"] = train_cfg.record()
    if _finished(out, record, seed, examples):
        log.info("teacher %s: finished with these params; kept", setup)
        return
    seed_everything(seed)
    model = S.build_teacher(params, setup, layout, visual)
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
        **validation(layout, task, visual, train_cfg),
    )
    if result is None:
        return
    load_report = model.init_report or {"init": "random"}
    info = collect(
        record, seed, steps=result.steps, train_seconds=result.seconds, load_report=load_report,
        fingerprint=_fingerprint(record, seed, examples),
    )  # fmt: skip
    if result.selection is not None:
        info["selection"] = result.selection
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

    The seeds share one stage: one after another in this process, or ``compute.workers`` at a time in worker
    processes on a CPU (amad_suite.pipeline.workers). A seed whose finished run in its folder has the same
    fingerprint (params, seed, torch threads, training data) is kept as it is, so adding a seed trains only the new
    one; folders of seeds no longer listed are removed, so the stage's output holds exactly the listed seeds.
    ``heads``: the student head count of the head-ratio matrix ("size": student.setups.<setup>.heads).
    """
    params = P.declared(params, "distill", setup=setup, method=method, seeds=seeds_key)
    seeds, workers = P.seeds(params, seeds_key), P.workers(params)
    job = _DistillJob(params, setup, method, data_root, teacher_dir, out_dir, heads, workers)
    context = job.context()  # checks every param and input before a seed starts
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in sorted(out.glob("s*")):
        if stale.is_dir() and stale.name not in {f"s{seed}" for seed in seeds}:
            shutil.rmtree(stale)
    pending = []
    for seed in seeds:
        if _finished(out / f"s{seed}", context.record, seed, context.examples):
            log.info("distill %s %s s%d: finished with these params; kept", setup, method, seed)
        else:
            pending.append(seed)
    run_each(_distill_seed, pending, workers, job=job, progress=progress)


_CONTEXTS: dict[str, SimpleNamespace] = {}


@dataclasses.dataclass(frozen=True)
class _DistillJob:
    """What every seed of a distill stage shares; picklable, so a worker process rebuilds the rest from it."""

    params: dict
    setup: str
    method: str
    data_root: str
    teacher_dir: str
    out_dir: str
    heads: str
    workers: int

    def context(self) -> SimpleNamespace:
        """Everything the seeds share, built once per process (the teacher is loaded once)."""
        key = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        if key not in _CONTEXTS:
            _CONTEXTS.clear()
            _CONTEXTS[key] = self._build()
        return _CONTEXTS[key]

    def _build(self) -> SimpleNamespace:
        heads = P.student_heads(self.heads)
        family, task = parse_setup(self.setup)
        terms = P.method_terms(self.params, self.method)
        dcfg, train_cfg = P.distill(self.params), P.student_train(self.params, self.setup)
        student_cfg = P.student_setup(self.params, self.setup)
        layout = DataLayout(Path(self.data_root), P.data_scale(self.params))
        kinds = tuple(dcfg.kinds.get(family, ())) if attention_terms(terms) else ()
        record = {
            "stage": "distill",
            "setup": self.setup,
            "method": self.method,
            "terms": describe(terms),
            # in the fingerprint: a finished seed trained under an older version of a loss is trained again
            "loss_versions": {t.name: losses.get(t.name).version for t in terms if t.name != "task"},
            "student": dataclasses.asdict(student_cfg),
            "heads": heads,
            "distill": {"train": train_cfg.record(), "layer_map": dcfg.layer_map, "kinds": list(kinds)},
            "torch_threads": torch_threads(self.workers),
        }
        teacher = S.load_teacher(self.teacher_dir)
        return SimpleNamespace(
            family=family, task=task, terms=terms, dcfg=dcfg, train_cfg=train_cfg, student_cfg=student_cfg,
            layout=layout, kinds=kinds, record=record, heads=heads, teacher=teacher,
            visual=E.visual_store(layout, family, task), examples=E.train_examples(layout, task),
        )  # fmt: skip


def _distill_seed(*, seed: int, job: _DistillJob, progress: bool) -> None:
    """Train and save the student of one seed (in the stage's process or a worker)."""
    c = job.context()
    run_out = Path(job.out_dir) / f"s{seed}"
    seed_everything(seed)
    student = S.build_student(job.params, job.setup, c.layout, c.visual, c.teacher, heads=c.heads)
    plan = plan_capture(
        student, c.teacher, c.kinds, c.dcfg.layer_map, student_from_teacher=c.student_cfg.init == "teacher"
    )
    result = _train_and_save(
        student,
        c.layout,
        c.task,
        c.visual,
        c.examples,
        c.train_cfg,
        run_out,
        record=c.record,
        seed=seed,
        desc=f"distill {job.setup} {job.method} s{seed}",
        progress=progress,
        terms=c.terms,
        teacher=c.teacher if needs_teacher(c.terms) else None,
        plan=plan,
        **validation(c.layout, c.task, c.visual, c.train_cfg),
    )
    if result is None:
        return
    save_npz(run_out / "alignment.npz", result.alignment)  # empty for methods without an alignment
    info = collect(
        c.record,
        seed,
        fingerprint=_fingerprint(c.record, seed, c.examples),
        steps=result.steps,
        train_seconds=result.seconds,
        resumed_from_step=result.resumed_from,
        final_losses=result.last_parts,
        capture_pairs=[list(p) for p in plan.pairs],
        calibrated_weights=result.weights,
        load_report=student.init_report or {"init": "random"},
        one_to_one_pairing=_pairings(c.terms, plan),
    )
    if result.selection is not None:
        info["selection"] = result.selection
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
