/* One instruction-set pass: every kernel template compiled for float and for double.
 * Included by fl_isa_base.c and fl_isa_avx2.c, which define FL_ISA. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fl_kernels.h"
#include "fl_simd.h"

#define FL_BITS 32
#include "fl_real.h"
#include "classification.inc"
#include "elementwise.inc"
#include "rows.inc"
#undef FL_BITS

#define FL_BITS 64
#include "fl_real.h"
#include "classification.inc"
#include "elementwise.inc"
#include "rows.inc"
#undef FL_BITS
