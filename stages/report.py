"""DVC stage: paper-style tables, the cost table, plots and reports/summary.json from all eval results."""

from amad_suite.cli import OneLineParser, run_stage


def main() -> None:
    parser = OneLineParser(description=__doc__)
    parser.add_argument("--results", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--published", required=True, help="hand-filled paper numbers (reports/published.yaml)")
    args = parser.parse_args()
    from amad_suite.config import check_preset, load_params
    from amad_suite.pipeline import params as P
    from amad_suite.reporting import build_report

    params = P.declared(load_params(), "report")
    check_preset(params["preset"])
    P.suite(params)
    cfg = P.report(params)
    build_report(
        args.results,
        args.out,
        published_path=args.published,
        baseline_method=cfg.baseline,
        claims=cfg.claims,
        baselines=P.BASELINES,
    )


if __name__ == "__main__":
    run_stage(main)
