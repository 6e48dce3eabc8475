rule table:
    input:
        metrics=get_all_metrics(),
        code=fer_code("aggregate.py"),
    output:
        table="results/tables/ablation.csv",
        summary="results/tables/summary.csv",
    log:
        "results/logs/table.log",
    script:
        "../../scripts/table.py"


rule figures:
    input:
        table="results/tables/ablation.csv",
        metrics=get_all_metrics(),
        histories=get_all_histories(),
        info=PREPARED_INFO,
        code=fer_code("aggregate.py", "plots.py"),
    output:
        early_stopping="results/figures/early_stopping.png",
        augmentation="results/figures/augmentation.png",
        confusion_matrix="results/figures/confusion_matrix.png",
        class_distribution="results/figures/class_distribution.png",
        overview="results/figures/overview.png",
    log:
        "results/logs/figures.log",
    script:
        "../../scripts/figures.py"


rule submission:
    input:
        table="results/tables/ablation.csv",
        predictions=get_all_predictions(),
        code=fer_code("aggregate.py", "submission.py"),
    output:
        "results/submission.csv",
    log:
        "results/logs/submission.log",
    script:
        "../../scripts/submission.py"
