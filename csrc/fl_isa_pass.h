/* One instruction-set pass: every kernel template compiled for float and for double.
 * Included by fl_isa_base.c, fl_isa_avx2.c and fl_isa_avx512.c, which define FL_ISA.
 * With FL_ISA_WIDE (the AVX-512 pass) the element-wise family is compiled on 64-byte
 * vectors (fl_real.h's FL_WIDE); the classification and rows families keep the 32-byte
 * layouts their tiles and the entry points' lane counts (fl_class_job.lanes) assume. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fl_kernels.h"
#include "fl_simd.h"

#define FL_BITS 32
#include "fl_real.h"
#include "fl_vhelpers.inc"
#include "classification.inc"
#include "rows.inc"
#ifdef FL_ISA_WIDE
#define FL_WIDE
#include "fl_real.h"
#include "fl_vhelpers.inc"
#endif
#include "elementwise.inc"
#undef FL_WIDE
#undef FL_BITS

#define FL_BITS 64
#include "fl_real.h"
#include "fl_vhelpers.inc"
#include "classification.inc"
#include "rows.inc"
#ifdef FL_ISA_WIDE
#define FL_WIDE
#include "fl_real.h"
#include "fl_vhelpers.inc"
#endif
#include "elementwise.inc"
#undef FL_WIDE
#undef FL_BITS
