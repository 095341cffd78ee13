"""`hydra/launcher=grouped`: where sets run (`backend`) and, on a cluster, what each set's job asks for.

python -m mlpjax.train -m seed=0,1,2,3 optim.lr=0.1,0.3,1,3                # one process, sets in turn
... hydra.launcher.backend=submitit_slurm hydra.launcher.partition=gpu       # one SLURM job per set
... hydra.launcher.dry_run=true                                             # the sets, and nothing trained
"""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf

BACKENDS = ("local", "submitit_local", "submitit_slurm")


@dataclass
class GroupedLauncherConf(SlurmQueueConf):
    """submitit's SLURM settings (partition, gpus_per_node, timeout_min, …: hydra-submitit-launcher's
    documentation), used by the submitit backends; `local` runs every set in this process."""

    _target_: str = "hydra_plugins.mlpjax_grouped_launcher.grouped_launcher.GroupedLauncher"
    backend: str = "local"  # local | submitit_local | submitit_slurm
    dry_run: bool = False  # print the sets the sweep would train, and the jobs complete already; train nothing
    # One process per set: it spreads its networks over every GPU it sees (tasks_per_node stays 1).
    tasks_per_node: int = 1


ConfigStore.instance().store(group="hydra/launcher", name="grouped", node=GroupedLauncherConf(), provider="mlpjax")
