"""One training loop for every family, task and method, on accelerate.

The loop is deterministic given the seed: the example order of epoch e is a permutation drawn from a generator
seeded with (seed, e), and the RNG state (dropout) is saved in every checkpoint. A run killed part-way and
started again resumes from its last checkpoint and reaches the same weights as an uninterrupted run.

Every step checks its loss terms and gradient norm for finiteness (one ``isfinite`` over values the step has
anyway); the first non-finite value stops the run with a one-line TrainingError before the optimizer applies it,
so no broken model is written and the last good checkpoint stays. Every ``log_every`` steps DVCLive also gets the
attention-to-task gradient-norm ratio and the scale that clipping applied (amad.training.balance), so a reader
can see whether an attention term swamps the task.

Batches come from ``amad.data.batches.TrainBatches`` (a pure function of the micro-batch index: VQA targets per
``cfg.vqa_targets``, BLIP's crop and flip per ``cfg.augment``, applied on the device), built ahead by
``cfg.num_workers`` DataLoader workers. The task loss's label smoothing is ``cfg.label_smoothing``. With
``cfg.select_on_val`` the run ends with the weights that scored best on validation data
(:mod:`amad_suite.training.selection`).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from dvclive import Live
from transformers import get_linear_schedule_with_warmup

from amad import atomic
from amad.data.batches import TrainBatches, iterate
from amad.data.visual.images import CLIP_MEAN, CLIP_STD
from amad.errors import DataError, TrainingError
from amad.models.base import DistillModel
from amad.progress import Progress
from amad.training.balance import calibrate, gradient_ratio
from amad.training.seed import rng_state, seed_everything, set_rng_state
from amad.training.step import CapturePlan, alignment_stats, distill_step
from amad.training.terms import Term
from amad.types import Example
from amad_suite.config import TrainConfig
from amad_suite.training import checkpoint as ckpt
from amad_suite.training.selection import Selection, evaluation_due

log = logging.getLogger(__name__)


def _end_live(live: Live) -> None:
    """``live.end()``, tolerating a race between seeds trained at once (compute.workers).

    Inside `dvc repro`, DVCLive's last act in ``end()`` removes the VS Code signal file
    ``.dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED`` after checking that it exists; a second process can remove it
    between the check and the removal. Everything ``end()`` saves is written before that step.
    """
    try:
        live.end()
    except FileNotFoundError as err:
        if "DVCLIVE_STEP_COMPLETED" not in str(err):
            raise


NO_DECAY = ("bias", "norm", "layer_norm", "layernorm")
CRASH_ENV = "AMAD_CRASH_AFTER_STEP"  # testing hook: SIGKILL the process right after checkpointing this step


@dataclass
class TrainResult:
    steps: int
    seconds: float
    resumed_from: int
    last_parts: dict[str, float] = field(default_factory=dict)
    alignment: dict[str, np.ndarray] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)  # calibrated weights of ``weight: auto`` terms
    selection: dict[str, Any] | None = None  # select_on_val: Selection.summary (the step whose weights were kept)


# The likely cause of a non-finite value, by where it appeared first.
CAUSES = {
    "task": "a non-finite input (features, images) or weight (a damaged checkpoint), or a diverging run",
    "grad_norm": "a diverging run: lower the learning rate or the loss weights",
}


def check_finite(step: int, names: Sequence[str], values: torch.Tensor, last_checkpoint: int) -> None:
    """Raise a one-line TrainingError naming the first non-finite value of ``values`` (1-D, one per name)."""
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return
    bad = int((~finite).nonzero()[0])
    name, value = names[bad], float(values[bad])
    cause = CAUSES.get(name, "a diverging run, a non-finite loss weight or option, or a non-finite input")
    kept = f"the checkpoint of step {last_checkpoint} is kept" if last_checkpoint else "no checkpoint was written yet"
    raise TrainingError(
        f"step {step}: {name} is {value} ({cause}); stopped before applying it: no model was written and {kept}"
    )


def make_accelerator(cfg: TrainConfig) -> Accelerator:
    """The run's Accelerator. DDP looks for unused parameters: a task can leave some without gradients (VL-T5's
    visual embedding on text-only Multi30K batches), which DDP otherwise rejects at the second step."""
    cuda = torch.cuda.is_available()
    return Accelerator(
        cpu=not cuda,
        mixed_precision=cfg.mixed_precision if cuda and cfg.mixed_precision != "fp32" else "no",
        gradient_accumulation_steps=cfg.grad_accum,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if any(k in name.lower() for k in NO_DECAY) else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _trim_live(live_dir: Path, keep_below: int) -> None:
    """Drop DVCLive step rows >= keep_below (logged after the checkpoint we resume from).

    Raises:
        DataError: a history file that is empty or holds a row that is not ``step<TAB>...`` (one line, with the fix).
    """
    for tsv in (live_dir / "plots" / "metrics").rglob("*.tsv"):
        lines = tsv.read_text(errors="replace").splitlines()
        try:
            if not lines or not lines[0].startswith("step"):
                raise ValueError("no 'step' header")
            kept = [lines[0]] + [ln for ln in lines[1:] if int(ln.split("\t")[0]) < keep_below]
        except ValueError as exc:
            raise DataError(
                f"{tsv} is not a DVCLive history ({exc}): delete {live_dir} and the run's checkpoint/ folder, then "
                "rerun to train from step 0"
            ) from None
        atomic.write_text(tsv, "\n".join(kept) + "\n")


def train(
    student: DistillModel,
    examples: Sequence[Example],
    visual: Any,
    cfg: TrainConfig,
    *,
    terms: tuple[Term, ...],
    seed: int,
    work_dir: str | Path,
    run_fingerprint: str,
    teacher: DistillModel | None = None,
    plan: CapturePlan | None = None,
    progress: bool = True,
    desc: str = "train",
    on_log: Callable[[int, dict[str, float]], None] | None = None,
    validate: Callable[[DistillModel], float] | None = None,
    metric: str = "",
) -> TrainResult:
    """Train ``student`` in place. ``work_dir`` holds ``checkpoint/`` (resume state) and ``dvclive/``.

    ``validate(model) -> score`` (higher is better; ``metric`` names it) is required by ``cfg.select_on_val``;
    it runs on the main process with the model in eval mode.
    """
    if not examples:
        raise DataError("no training examples: check the data stage outputs and data.* sizes in params.yaml")
    if cfg.select_on_val and validate is None:
        raise DataError("select_on_val needs a validation function: pass validate= (the stages build it)")
    plan = plan or CapturePlan()
    work_dir = Path(work_dir)
    ckpt_dir, live_dir = work_dir / "checkpoint", work_dir / "dvclive"
    accelerator = make_accelerator(cfg)
    seed_everything(seed)
    student.label_smoothing = cfg.label_smoothing  # the one setting of the task loss's smoothing
    rank, world = accelerator.process_index, accelerator.num_processes
    options = {"batch_size": cfg.batch_size, "seed": seed, "targets": cfg.vqa_targets, "augment": cfg.augment}
    batches = TrainBatches(student, examples, visual, rank=rank, world=world, **options)
    mean, std = getattr(visual, "mean", CLIP_MEAN), getattr(visual, "std", CLIP_STD)  # the images' normalisation

    micro_per_epoch = batches.micro_per_epoch
    total_steps = math.ceil(micro_per_epoch * cfg.epochs / cfg.grad_accum)
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    total_micro = total_steps * cfg.grad_accum

    optimizer = torch.optim.AdamW(_param_groups(student, cfg.weight_decay), lr=cfg.lr, eps=1e-6)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * total_steps), total_steps)

    state = ckpt.load_state(ckpt_dir, run_fingerprint)
    start_micro, step, early, weights = 0, 0, {}, {}
    selection = Selection() if cfg.select_on_val else None
    if state is not None:
        student.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        start_micro, step, early = state["micro_step"], state["step"], state.get("early_alignment", {})
        weights = state.get("weights", {})
        selection = Selection.from_state(state.get("selection")) if cfg.select_on_val else None
        terms = tuple(t.with_weight(weights[t.name]) if t.auto else t for t in terms)
        log.info("%s: resuming from step %d/%d", desc, step, total_steps)
        _trim_live(live_dir, keep_below=step // cfg.log_every)

    student, optimizer, scheduler = accelerator.prepare(student, optimizer, scheduler)
    if teacher is not None:
        teacher.to(accelerator.device).eval().requires_grad_(False)
    student.train()
    if state is None and any(t.auto for t in terms):  # weight: auto, from the first batch of the run (all ranks)
        unwrapped = accelerator.unwrap_model(student)
        first = TrainBatches(unwrapped, examples, visual, **options)(0)
        batch = first.to(accelerator.device).augmented(mean, std)
        with accelerator.autocast():
            terms, weights = calibrate(unwrapped, teacher, batch, terms, plan)
        log.info("%s: calibrated weights %s", desc, {k: round(v, 6) for k, v in weights.items()})

    live = None
    if accelerator.is_main_process:
        live = Live(str(live_dir), resume=state is not None, dvcyaml=None, save_dvc_exp=False, report=None)
        live.step = step // cfg.log_every
    bar = Progress(total_steps, desc, initial=step, every=cfg.log_every, enabled=progress and live is not None)
    started, last_parts, late = time.perf_counter(), {}, {}
    last_checkpoint = step
    diagnose = world == 1  # autograd.grad beside DDP's reducer is unsupported; multi-GPU runs skip the ratio
    crash_at = int(os.environ.get(CRASH_ENV, "0") or 0)
    previous_micro = start_micro - 1  # the micro-batch the last optimizer step ended on
    micros = range(start_micro, total_micro)

    for micro, micro_batch in zip(micros, iterate(batches, micros, cfg.num_workers), strict=True):
        unwrapped = accelerator.unwrap_model(student)
        batch = micro_batch.to(accelerator.device).augmented(mean, std)
        with accelerator.accumulate(student), accelerator.autocast():
            result = distill_step(unwrapped if world == 1 else student, teacher, batch, terms, plan)
            logging_step = accelerator.sync_gradients and (step + 1) % cfg.log_every == 0
            ratio = gradient_ratio(unwrapped, result, terms) if logging_step and diagnose else None
            accelerator.backward(result.total)
            grad_norm = None
            if accelerator.sync_gradients:
                params = [p for p in student.parameters() if p.grad is not None]
                if cfg.clip > 0:
                    grad_norm = accelerator.clip_grad_norm_(student.parameters(), cfg.clip)
                else:
                    grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params])
                names = [*result.parts, "loss", "grad_norm"]
                values = torch.stack([*(v.detach().float() for v in result.parts.values()), result.total.detach()])
                values = torch.cat([values.float().cpu(), torch.as_tensor(grad_norm).float().cpu().view(1)])
                check_finite(step + 1, names, values, last_checkpoint)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        if not accelerator.sync_gradients:
            continue
        step += 1
        if plan.check_rows and plan.pairs:  # the first step proved the maps are softmax rows; skip the pass now
            plan = replace(plan, check_rows=False)
        parts = dict(zip(names, values.tolist()))
        parts.pop("grad_norm")
        last_parts = parts
        if step % cfg.log_every == 0 or step == total_steps:
            stats = alignment_stats(result, terms, plan) if plan.pairs else {}
            if stats:
                parts["alignment_entropy"] = float(stats.pop("entropy"))
                if not early:
                    early = {k: v.numpy() for k, v in stats.items()}
                late = {k: v.numpy() for k, v in stats.items()}
            if ratio is not None:
                parts["grad_ratio"] = ratio  # ‖∇ attention terms‖ / ‖∇ task term‖, before clipping
            norm = float(grad_norm)
            parts["clip_scale"] = min(1.0, cfg.clip / (norm + 1e-6)) if cfg.clip > 0 else 1.0
            if live is not None and step % cfg.log_every == 0:
                for name, value in parts.items():
                    live.log_metric(f"train/{name}", value)
                live.log_metric("train/lr", scheduler.get_last_lr()[0])
                live.next_step()
            if on_log is not None:
                on_log(step, parts)
        bar.update(1, loss=parts["loss"])
        due = evaluation_due(step, micro, previous_micro, micro_per_epoch, total_steps, cfg.eval_every)
        previous_micro = micro
        if selection is not None and due:
            if accelerator.is_main_process:
                _select(selection, unwrapped, validate, step, accelerator, desc, metric)
            accelerator.wait_for_everyone()
        if step % cfg.checkpoint_every == 0 and step < total_steps:
            if accelerator.is_main_process:
                ckpt.save_state(
                    ckpt_dir,
                    {
                        "fingerprint": run_fingerprint,
                        "model": accelerator.unwrap_model(student).state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "rng": rng_state(),
                        "micro_step": micro + 1,
                        "step": step,
                        "early_alignment": early,
                        "weights": weights,
                        "selection": selection.state() if selection is not None else None,
                    },
                )
                last_checkpoint = step
            accelerator.wait_for_everyone()
            if crash_at and step == crash_at:
                os.kill(os.getpid(), signal.SIGKILL)
    bar.close()
    if live is not None:
        _end_live(live)
    summary = None
    if selection is not None and accelerator.is_main_process:
        if selection.best_step != step and selection.weights is not None:  # end with the best validated weights
            accelerator.unwrap_model(student).load_state_dict(selection.weights)
        log.info("%s: kept the weights of step %d (%s %.4g)", desc, selection.best_step, metric, selection.best_score)
        summary = selection.summary(metric, cfg.eval_every)
    alignment = {f"early/{k}": v for k, v in early.items()} | {f"late/{k}": v for k, v in late.items()}
    return TrainResult(
        steps=step,
        seconds=time.perf_counter() - started,
        resumed_from=state["step"] if state else 0,
        last_parts=last_parts,
        alignment=alignment,
        weights=weights,
        selection=summary,
    )


def _select(
    selection: Selection,
    model: DistillModel,
    validate: Callable[[DistillModel], float],
    step: int,
    accelerator: Accelerator,
    desc: str,
    metric: str,
) -> None:
    """Score the model on validation data and record it; the training RNG state and mode are left as they were."""
    saved = rng_state()
    model.eval()
    try:
        with torch.no_grad(), accelerator.autocast():
            score = float(validate(model))
    finally:
        model.train()
        set_rng_state(saved)
    best = selection.update(step, score, model)
    log.info("%s: step %d validation %s %.4g%s", desc, step, metric, score, " (best so far)" if best else "")
