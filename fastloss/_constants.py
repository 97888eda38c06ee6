"""Numerical constants of torch's losses that every backend must use alike, defined once
(the NumPy reference and the Numba kernels import them; csrc/ has their C twins, named
in comments there)."""
import math

import numpy as np

# torch bounds x (1 - x) in BCE's gradient by the float constant 1e-12, whatever the dtype
BCE_GRAD_EPS = float(np.float32(1e-12))

# torch adds its float constant EPSILON = 1e-12 (as a float: 0.99999999600419720e-12) to
# both squared norms of cosine_embedding_loss
COSINE_EPS = float(np.float32(1e-12))

# log(2 pi) / 2: gaussian_nll_loss's constant term with full=True
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
