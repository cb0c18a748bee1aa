"""allocsim: a kernel-faithful model of the Linux 2.6.36-rc3 page allocator and the 2010
per-cpu counter drift livelock, with Mel Gorman's three fixes as switches.

>>> import allocsim
>>> result = allocsim.run(allocsim.SimConfig.preset("large", patches="none", seed=1))
>>> result.livelocked
True
"""

from .config import PRESETS, SimConfig, preset
from .patches import Patches
from .sim import Simulation, run
from .trace import RunResult

KERNEL_VERSION = "2.6.36-rc3 (all patches off) / 2.6.36 (all patches on)"

__all__ = [
    "Patches",
    "SimConfig",
    "Simulation",
    "RunResult",
    "run",
    "preset",
    "PRESETS",
    "KERNEL_VERSION",
]
__version__ = "0.1.0"
