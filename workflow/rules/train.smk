rule train:
    input:
        data=PREPARED,
    output:
        metrics=f"{CELL_DIR}/metrics.json",
        history=f"{CELL_DIR}/history.csv",
        model=f"{CELL_DIR}/model.pt",
        predictions=f"{CELL_DIR}/predictions.csv",
    params:
        settings=get_cell_settings,
        run_dir=CELL_DIR,
    log:
        "results/logs/train/{arch}/{aug}/{es}/seed-{seed}.log",
    # PyTorch on the CPU uses this many threads, because Snakemake passes it
    # as OMP_NUM_THREADS. Change it with --set-threads train=N.
    threads: train_threads()
    resources:
        gpu=1,
    script:
        "../../scripts/train.py"
