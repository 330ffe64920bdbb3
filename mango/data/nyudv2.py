"""NYUDv2 in the TokenFusion list layout (see ``mango.data.rgbd.NYUDv2``)."""

from .constants import NYUDV2_CLASSES
from .rgbd import NYUDv2

__all__ = ["NYUDV2_CLASSES", "NYUDv2"]
