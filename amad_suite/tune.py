"""Choose one option of a distillation method on validation data, never on the test sets.

    python -m amad_suite.tune --setup blip-caption --method amad_sharp --option amad_kl.tau \\
        --values 0.5 0.2 0.1 0.05 --seeds 0 --out reports/tuning/blip-caption-amad_sharp.csv
    python -m amad_suite.tune --setup blip-caption --method none \\
        --param student.setups.blip-caption.train.max_steps --values 300 450 600 --seeds 0 1 2 3 \\
        --out reports/tuning/blip-caption-none-steps.csv
    python -m amad_suite.tune --setup vlt5-vqa --method teacher \\
        --param teacher.setups.vlt5-vqa.train.max_steps --values 1000 1500 2000 3000 \\
        --out reports/tuning/vlt5-vqa-teacher-steps.csv

Run it in a repository whose teachers are trained (``dvc repro teacher@<setup>``). For every value it distils a
student exactly as the distill stage would (the same params, with only ``distill.methods.<method>.<option>``
changed), scores it on the task's validation split, and writes one CSV row per value and seed plus a line naming the
value with the best mean headline metric (``--within X``: the first listed value within X of it). ``--method teacher``
trains and scores the setup's teacher instead, as the teacher stage would (one run per value, with the data seed, so
``--seeds`` does not apply; ``--param`` must be a ``teacher.`` key). The runs live under ``--work`` (default
``results/tune``) and are kept, so a rerun with more values trains only the new ones. Copy the chosen value into
params.yaml yourself: the choice is a decision a person signs, and the CSV is its evidence.
"""

from __future__ import annotations

import argparse
import copy
import csv
import logging
import statistics
from pathlib import Path
from typing import Any

from amad.errors import ConfigError, DataError
from amad_suite.cli import OneLineParser, run_stage
from amad_suite.config import load_params, parse_setup, section

log = logging.getLogger(__name__)
# --method teacher tunes a teacher setting: pipeline.params.TEACHER, which no distill method may take (not imported
# here, so that the script reaches its warm start before torch is imported)
TEACHER = "teacher"


def with_option(params: dict[str, Any], method: str, option: str, value: Any) -> dict[str, Any]:
    """A copy of ``params`` with ``distill.methods.<method>.<option>`` (dotted, e.g. ``amad_kl.tau``) set to value.

    The option must already exist: a typo fails with the near matches instead of adding an unread key."""
    out = copy.deepcopy(params)
    *parents, leaf = option.split(".")
    node = section(out, ".".join(["distill", "methods", method, *parents]))
    if not isinstance(node, dict) or leaf not in node:
        section(out, ".".join(["distill", "methods", method, option]))  # raises the one-line error with near matches
    node[leaf] = value
    return out


def with_param(params: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``params`` with the dotted ``key`` (anywhere, e.g. ``student.setups.blip-caption.train.max_steps``)
    set to ``value``. Its parent section must exist; params validation then rejects a leaf nothing reads."""
    out = copy.deepcopy(params)
    *parents, leaf = key.split(".")
    node = section(out, ".".join(parents)) if parents else out
    if not isinstance(node, dict):
        raise ConfigError(f"{'.'.join(parents)} is not a section of params.yaml: give the dotted key of a setting")
    node[leaf] = value
    return out


def parse_value(text: str) -> Any:
    """``0.1`` -> 0.1, ``3`` -> 3, anything else stays a string (e.g. a pairing name)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def tune(
    params: dict[str, Any],
    setup: str,
    method: str,
    option: str | None,
    values: list[Any],
    seeds: list[int],
    *,
    data_root: str = "data",
    teacher_dir: str | None = None,
    work_dir: str = "results/tune",
    meteor: Any = True,
    param: str | None = None,
) -> list[dict[str, Any]]:
    """Distil and score one student per value and seed; returns the CSV rows (value, seed, headline, metric).

    The value goes to ``distill.methods.<method>.<option>``, or with ``param`` to that dotted key of params (a
    setting outside the method, such as a setup's student steps, which then holds for every method alike)."""
    from amad.models import load_model
    from amad_suite.pipeline import examples as E
    from amad_suite.pipeline import params as P
    from amad_suite.pipeline.eval_stages import evaluate_model
    from amad_suite.pipeline.layout import DataLayout
    from amad_suite.pipeline.train_stages import run_distill, run_teacher

    _, task = parse_setup(setup)
    if not values or not seeds:
        raise ConfigError("give at least one --values entry and one --seeds entry")
    teacher_dir = teacher_dir or f"results/teachers/{setup}"
    rows = []
    name = param or option
    if not name:
        raise ConfigError("give --option (a method's setting) or --param (a dotted key of params.yaml)")
    if method == TEACHER and not (param or "").startswith("teacher."):
        raise ConfigError(f"--method teacher tunes a teacher setting: give --param teacher.setups.{setup}.<key>")
    for value in values:
        trial = with_param(params, param, value) if param else with_option(params, method, option, value)
        trial["suite"] = {**trial["suite"], "seeds": list(seeds)}
        P.validate_all(trial)  # a value the method rejects (tau=0) fails here, before any training
        out = Path(work_dir) / f"{setup}-{method}-{name}={value}"
        if method == TEACHER:
            run_teacher(trial, setup, data_root, str(out))  # keeps a finished teacher with the same params
            runs = {P.data_seed(trial): out / "model"}  # the teacher stage seeds with the data seed
        else:
            run_distill(trial, setup, method, "seeds", data_root, teacher_dir, str(out))
            runs = {seed: out / f"s{seed}" / "model" for seed in seeds}
        layout = DataLayout(Path(data_root), P.data_scale(trial))
        ecfg = P.evaluate(trial)
        val = {"val": E.val_examples(layout, task)}
        for seed, folder in runs.items():
            model = load_model(folder)
            record, _ = evaluate_model(
                model, ecfg, setup, method, seed, layout, preset=trial["preset"], meteor=meteor, sets=val
            )
            headline = validation_headline(record.headline)
            metric = record.metrics.get(headline)
            if metric is None:
                raise DataError(f"{setup} {name}={value} s{seed}: the validation split gave no {headline}")
            rows.append({"value": value, "seed": seed, "headline": headline, "val_metric": metric})
            log.info("%s %s %s=%s s%d: validation %s %.3f", setup, method, name, value, seed, headline, metric)
    return rows


def validation_headline(headline: str) -> str:
    """The headline's key on the validation split: a per-set metric (``BLEU/test2016``) becomes ``BLEU/val``."""
    return f"{headline.split('/')[0]}/val" if "/" in headline else headline


def best(rows: list[dict[str, Any]], within: float = 0.0) -> tuple[Any, float]:
    """The first listed value whose mean validation metric over its seeds is within ``within`` of the highest mean
    (0: the highest, ties to the first listed); list values cheapest first to get the cheapest near the best."""
    means: dict[Any, list[float]] = {}
    for row in rows:
        means.setdefault(row["value"], []).append(row["val_metric"])
    top = max(statistics.fmean(v) for v in means.values())
    value = next(v for v in means if statistics.fmean(means[v]) >= top - within)
    return value, statistics.fmean(means[value])


def write_csv(path: Path, rows: list[dict[str, Any]], header: dict[str, str]) -> None:
    from amad.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        for key, text in header.items():
            f.write(f"# {key}: {text}\n")
        writer = csv.DictWriter(f, fieldnames=["value", "seed", "headline", "val_metric"])
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", required=True)
    parser.add_argument("--method", required=True, help="a method under distill.methods, or teacher")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--option", help="dotted option under the method, e.g. amad_kl.tau")
    what.add_argument("--param", help="a dotted key of params.yaml, e.g. student.setups.blip-caption.train.max_steps")
    parser.add_argument("--values", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--within", type=float, default=0.0, help="choose the first listed value within this of the best mean"
    )
    parser.add_argument("--data", default="data")
    parser.add_argument("--teacher", help="teacher folder (default results/teachers/<setup>)")
    parser.add_argument("--work", default="results/tune", help="where the tuning students are kept")
    parser.add_argument("--out", required=True, help="CSV of validation scores")
    args = parser.parse_args(argv)
    from amad_suite.pipeline import params as P

    params = load_params()
    P.validate_all(params)
    if args.method not in params["distill"]["methods"] and args.method != TEACHER:
        from amad.registry import unknown_name

        raise unknown_name("method", args.method, params["distill"]["methods"])
    values = [parse_value(v) for v in args.values]
    rows = tune(
        params, args.setup, args.method, args.option, values, args.seeds,
        data_root=args.data, teacher_dir=args.teacher, work_dir=args.work, param=args.param,
    )  # fmt: skip
    value, mean = best(rows, args.within)
    name = args.param or args.option
    header = {
        "setup": args.setup,
        "method": args.method,
        "option": name,
        "preset": params["preset"],
        "split": "validation",
        "chosen": f"{value} (mean {rows[0]['headline']} {mean:.3f} over seeds {sorted({r['seed'] for r in rows})})"
        + (f"; the first listed within {args.within:g} of the best mean" if args.within else ""),
    }
    write_csv(Path(args.out), rows, header)
    print(f"{args.setup} {args.method}: {name}={header['chosen']}; written {args.out}")


if __name__ == "__main__":
    run_stage(main)
