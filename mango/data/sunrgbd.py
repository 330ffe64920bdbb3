"""SUN RGB-D in the DFormer layout (see ``mango.data.rgbd.SUNRGBD``)."""

from .constants import SUNRGBD_CLASSES
from .rgbd import SUNRGBD

__all__ = ["SUNRGBD", "SUNRGBD_CLASSES"]
