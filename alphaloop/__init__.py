"""alphaloop: an autoresearch loop for trading strategies whose numbers can be trusted."""

import os

# One BLAS thread, set before numpy loads (every entry point imports this package first): the loop, its
# sandbox children and other runs share the cores, and OpenBLAS's own threads made a 344x344 eigvalsh take
# 0.1-1.2 s against ~3 ms single-threaded on a loaded 2-core machine. A value already set is kept.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
