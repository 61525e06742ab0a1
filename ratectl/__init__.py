"""ratectl: the operator's command line for ratehub.

Kept empty of imports so ``ratectl --help`` starts fast.
"""

__version__ = "0.1.0"
