"""Snakemake entry point of the figures rule: every seaborn figure of the report."""

from pathlib import Path

from fer.aggregate import read_table, select_best
from fer.io import read_json
from fer.logs import run_snakemake_script
from fer.plots import write_report_figures


def main(snakemake):
    table = read_table(snakemake.input.table)
    data_info = read_json(snakemake.input.info)
    write_report_figures(table, select_best(table), data_info, Path(snakemake.output.overview).parent)


run_snakemake_script(main, snakemake)  # noqa: F821 - Snakemake defines `snakemake` in a script's namespace
