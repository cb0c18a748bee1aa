"""allocsim: a kernel-faithful model of the Linux 2.6.36-rc3 page allocator and the 2010
per-cpu counter drift livelock, with Mel Gorman's three fixes as switches.
"""

from .patches import Patches

KERNEL_VERSION = "2.6.36-rc3 (unpatched) / 2.6.36 (all patches)"

__all__ = ["Patches", "KERNEL_VERSION"]
__version__ = "0.1.0"
