"""Snakemake entry point of the table rule: one row per grid cell, and the mean over seeds."""

from fer.aggregate import collect_runs, summarize, write_table
from fer.logs import run_snakemake_script


def main(snakemake):
    table = collect_runs(snakemake.input.metrics)
    write_table(table, snakemake.output.table)
    write_table(summarize(table), snakemake.output.summary)


run_snakemake_script(main, snakemake)  # noqa: F821 - Snakemake defines `snakemake` in a script's namespace
