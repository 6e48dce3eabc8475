"""Snakemake entry point of the train rule: train one grid cell."""

from fer.config import TrainConfig
from fer.data.dataset import load_prepared
from fer.fit import fit
from fer.logs import run_snakemake_script


def main(snakemake):
    config = TrainConfig.from_mapping(snakemake.params.settings, where=f"config (cell {snakemake.params.run_dir})")
    data = load_prepared(snakemake.input.data)
    fit(config, data, snakemake.params.run_dir)


run_snakemake_script(main, snakemake)  # noqa: F821 - Snakemake defines `snakemake` in a script's namespace
