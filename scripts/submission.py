"""Snakemake entry point of the submission rule: the best cell's test predictions as id,label."""

from fer.aggregate import read_table, select_best
from fer.logs import run_snakemake_script
from fer.submission import write_submission


def main(snakemake):
    best = select_best(read_table(snakemake.input.table))
    write_submission(f"{best['run_dir']}/predictions.csv", snakemake.output[0])


run_snakemake_script(main, snakemake)  # noqa: F821 - Snakemake defines `snakemake` in a script's namespace
