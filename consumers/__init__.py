"""The edge of stream-al: Kafka clients, HTTP, files and the command line."""

import os

# The core's matrices are small (a novelty detector's covariance is at most 128²): BLAS
# threads only contend with the loop for two cores. Measured: eigh of a 40² matrix took
# 0.26 ms on one thread and 0.6–7 ms on OpenBLAS's default threads under load. Set
# before NumPy is first imported; an operator's own setting wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
