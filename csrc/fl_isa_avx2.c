/* The AVX2+FMA pass, picked at run time when the CPU has both (fl_entry.c). Only this
 * file is compiled for AVX2, through a target pragma, so the module still loads and runs
 * on an x86-64 CPU without it. On other architectures it compiles to nothing. */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#define FL_ISA avx2
#include "fl_isa_pass.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
