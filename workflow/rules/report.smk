rule report:
    input:
        table="results/tables/ablation.csv",
        # The report reads each run's settings and per-class recall.
        metrics=get_all_metrics(),
        info=PREPARED_INFO,
        figures=rules.figures.output,
        submission="results/submission.csv",
        code=fer_code("aggregate.py", "report/render.py", "report/templates/report.html.j2"),
    output:
        "results/report.html",
    params:
        config=STUDY,
    log:
        "results/logs/report.log",
    script:
        "../../scripts/report.py"
