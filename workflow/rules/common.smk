import sys
from pathlib import Path

import fer
from snakemake.exceptions import WorkflowError
from fer.data.prepare import resolve_data_source, source_fingerprint
from fer.errors import FerError
from fer.workflow import cell_config, expand_cells, prepare_settings, validate_config

# A config error stops here with one message; a traceback would only bury it.
try:
    STUDY = validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))
    DATA_SOURCE = resolve_data_source(STUDY["data"])
    PREPARE_SETTINGS = prepare_settings(STUDY)
    CELLS = expand_cells(STUDY)
except FerError as error:
    sys.exit(f"error: {error}")

if STUDY["data"] == "auto":
    print(f"fer-ablation: data: auto resolved to {DATA_SOURCE!r}", file=sys.stderr)

PREPARED = "results/prepared/dataset.npz"
PREPARED_INFO = "results/prepared/dataset.json"
CELL_DIR = "results/runs/{arch}/{aug}/{es}/seed-{seed}"

# Snakemake tracks each rule's script but not the fer modules it imports.
# The table, figures, submission and report rules take their modules as
# inputs, so an edit there reruns those rules, which take seconds. The train
# rule takes none, because an edit of the training code would retrain the
# whole grid. Users force that with `--forcerun train`.
FER_DIR = Path(fer.__file__).parent


wildcard_constraints:
    arch="|".join(STUDY["architectures"]),
    aug="|".join(STUDY["augmentation"]),
    es="on|off",
    seed=r"\d+",


def get_cell(wildcards):
    """Return the grid cell named by a train job's wildcards."""
    for cell in CELLS:
        if (cell.arch, cell.augmentation, cell.early_stopping, str(cell.seed)) == (
            wildcards.arch,
            wildcards.aug,
            wildcards.es,
            wildcards.seed,
        ):
            return cell
    raise ValueError(f"{wildcards} is not a cell of the configured grid")


def get_cell_settings(wildcards):
    """Return the resolved training settings of one cell.

    They are the train rule's params, so Snakemake reruns exactly the cells
    whose settings changed (its default 'params' rerun trigger).
    """
    return cell_config(STUDY, get_cell(wildcards)).to_dict()


def get_all_metrics():
    return [f"{cell.run_dir}/metrics.json" for cell in CELLS]


def get_all_histories():
    return [f"{cell.run_dir}/history.csv" for cell in CELLS]


def get_all_predictions():
    return [f"{cell.run_dir}/predictions.csv" for cell in CELLS]


def fer_code(*modules):
    """Return the paths of fer package files, relative to the package, as rule inputs."""
    return [str(FER_DIR / module) for module in modules]


def train_threads():
    """Return the threads of one training job, the --cores shared among the jobs that --resources gpu=N runs at once.

    Where Snakemake has no core count, workflow.cores raises WorkflowError
    and each job gets 1 thread.
    """
    try:
        cores = workflow.cores
    except WorkflowError:
        return 1

    # Snakemake 9.27 stores a Resource object here. getattr also accepts a plain number.
    slots = workflow.global_resources.get("gpu")
    slots = getattr(slots, "value", slots)
    if not isinstance(slots, int) or slots < 1:
        slots = 1
    return max(1, cores // slots)
