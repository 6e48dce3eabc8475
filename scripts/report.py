"""Snakemake entry point of the report rule: the self-contained HTML report."""

import datetime
from pathlib import Path

from fer.aggregate import read_table, select_best
from fer.io import read_json
from fer.logs import run_snakemake_script
from fer.report import render_report


def main(snakemake):
    table = read_table(snakemake.input.table)
    render_report(
        table=table,
        best=select_best(table),
        figures={Path(path).stem: path for path in snakemake.input.figures},
        data_info=read_json(snakemake.input.info),
        config=snakemake.params.config,
        out_path=snakemake.output[0],
        runtime={"date": datetime.datetime.now().isoformat(timespec="seconds"), "submission_path": snakemake.input.submission},
    )


run_snakemake_script(main, snakemake)  # noqa: F821 - Snakemake defines `snakemake` in a script's namespace
