/* The baseline pass: compiled for the compiler's default target (SSE2 on x86-64), so it
 * runs on every CPU the module can be loaded on. */
#define FL_ISA base
#include "fl_isa_pass.h"
