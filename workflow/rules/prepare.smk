rule prepare:
    output:
        data=PREPARED,
        info=PREPARED_INFO,
    params:
        source=DATA_SOURCE,
        settings=PREPARE_SETTINGS,
        # Changes when the dataset's files change, so a replaced dataset is prepared again.
        fingerprint=source_fingerprint(DATA_SOURCE, **PREPARE_SETTINGS),
    log:
        "results/logs/prepare.log",
    script:
        "../../scripts/prepare.py"
