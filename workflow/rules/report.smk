rule report:
    input:
        table="results/tables/ablation.csv",
        info=PREPARED_INFO,
        figures=rules.figures.output,
        submission="results/submission.csv",
    output:
        "results/report.html",
    params:
        config=STUDY,
    log:
        "results/logs/report.log",
    script:
        "../../scripts/report.py"
