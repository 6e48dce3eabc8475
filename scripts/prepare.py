"""Snakemake entry point of the prepare rule: decode the dataset once."""

from fer.data.prepare import prepare_dataset
from fer.io import write_json
from fer.logs import run_snakemake_script


def main(snakemake):
    data = prepare_dataset(snakemake.params.source, snakemake.output.data, **snakemake.params.settings, cache_dir="results/cache")
    write_json(snakemake.output.info, data.info)


run_snakemake_script(main, snakemake)  # noqa: F821 - Snakemake defines `snakemake` in a script's namespace
