/* The AVX-512 pass (F, VL, DQ, BW, with AVX2 and FMA), picked at run time when the CPU has
 * them all (fl_entry.c). It compiles every template like the AVX2 pass, and the
 * element-wise family on 64-byte vectors (FL_ISA_WIDE, see fl_isa_pass.h). GCC only: its
 * target pragma defines __AVX512F__ and the others for the preprocessor, which fl_simd.h's
 * 64-byte section needs (clang's target attribute does not); elsewhere this file compiles
 * to nothing and the AVX2 pass stays the widest. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__)
#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma GCC target("avx2,fma,avx512f,avx512vl,avx512dq,avx512bw")

#define FL_ISA avx512
#define FL_ISA_WIDE
#include "fl_isa_pass.h"
#endif
