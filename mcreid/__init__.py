"""mcreid: real-time multi-camera person tracking and video re-identification.

The core package holds only what every part shares: the asset lookup and the
``Embedder`` protocol. Heavy dependencies live in the parts that need them.
"""

__version__ = "0.1.0"
