/* The names the kernel templates (*.inc) are written in, for one dtype: include with
 * FL_BITS 32 or 64 and FL_ISA (base / avx2 / avx512) defined. Re-including it switches
 * dtype. With FL_WIDE also defined (the AVX-512 pass, for the families it compiles wide:
 * see fl_isa_pass.h) the vectors are 64 bytes, 16 floats or 8 doubles; the names a wide
 * family does not use (GATHER, HSUM, HMAX, SUMEXPNEG) are left undefined there. */
#undef REAL
#undef VR
#undef VI
#undef FN
#undef FH
#undef LD
#undef LDN
#undef GATHER
#undef ST
#undef STN
#undef SEL
#undef VMAX
#undef VABS
#undef VEXP
#undef VEXPNEG
#undef SUMEXPNEG
#undef VLOG
#undef VLOG1P
#undef VLOG1P_UNIT
#undef HSUM
#undef HMAX
#undef ACC_ADD
#undef WL
#undef IDX
#undef LANES_LT
#undef SPLAT
#undef ACC
#undef ACC_SUM

#define FL_CAT3_(a, b, c) a##b##c
#define FL_CAT3(a, b, c) FL_CAT3_(a, b, c)

#if defined(FL_WIDE) && FL_BITS == 32
#define REAL fl_f32u
#define VR v16sf
#define VI v16si
#define FN(name) FL_CAT3(name, _f32_, FL_ISA)
#define LD ld_f32x16
#define LDN ldn_f32x16
#define ST st_f32x16
#define STN stn_f32x16
#define SEL sel_f32x16
#define VMAX max_f32x16
#define VABS abs_f32x16
#define VEXP exp_f32x16
#define VEXPNEG expneg_f32x16
#define VLOG log_f32x16
#define VLOG1P log1p_f32x16
#define VLOG1P_UNIT log1p_unit_f32x16
#define ACC fl_accw
#define ACC_ADD acc_add_f32x16
#define ACC_SUM accw_sum
#define WL FL_W32X16
#define IDX int32_t
#define LANES_LT lanes_lt_i32x16
#elif defined(FL_WIDE) && FL_BITS == 64
#define REAL fl_f64u
#define VR v8df
#define VI v8di
#define FN(name) FL_CAT3(name, _f64_, FL_ISA)
#define LD ld_f64x8
#define LDN ldn_f64x8
#define ST st_f64x8
#define STN stn_f64x8
#define SEL sel_f64x8
#define VMAX max_f64x8
#define VABS abs_f64x8
#define VEXP exp_f64x8
#define VEXPNEG expneg_f64x8
#define VLOG log_f64x8
#define VLOG1P log1p_f64x8
#define VLOG1P_UNIT log1p_unit_f64x8
#define ACC fl_accw
#define ACC_ADD acc_add_f64x8
#define ACC_SUM accw_sum
#define WL FL_W64X8
#define IDX int64_t
#define LANES_LT lanes_lt_i64x8
#elif FL_BITS == 32
#define REAL fl_f32u   /* float, read at any alignment: see fl_simd.h */
#define VR v8sf
#define VI v8si
#define FN(name) FL_CAT3(name, _f32_, FL_ISA)
#define LD ld_f32
#define LDN ldn_f32
#define GATHER gather_f32
#define ST st_f32
#define STN stn_f32
#define SEL sel_f32
#define VMAX max_f32
#define VABS abs_f32
#define VEXP exp_f32
#define VEXPNEG expneg_f32
#define SUMEXPNEG sumexpneg_f32
#define VLOG log_f32
#define VLOG1P log1p_f32
#define VLOG1P_UNIT log1p_unit_f32
#define HSUM(v) ((double)hsum_f32(v))
#define HMAX hmax_f32
#define ACC_ADD acc_add_f32
#define ACC fl_acc
#define ACC_SUM acc_sum
#define WL FL_W32
#define IDX int32_t   /* the lane type of VI */
#define LANES_LT lanes_lt_i32
#elif FL_BITS == 64
#define REAL fl_f64u
#define VR v4df
#define VI v4di
#define FN(name) FL_CAT3(name, _f64_, FL_ISA)
#define LD ld_f64
#define LDN ldn_f64
#define GATHER gather_f64
#define ST st_f64
#define STN stn_f64
#define SEL sel_f64
#define VMAX max_f64
#define VABS abs_f64
#define VEXP exp_f64
#define VEXPNEG expneg_f64
#define SUMEXPNEG sumexpneg_f64
#define VLOG log_f64
#define VLOG1P log1p_f64
#define VLOG1P_UNIT log1p_unit_f64
#define HSUM(v) hsum_f64(v)
#define HMAX hmax_f64
#define ACC_ADD acc_add_f64
#define ACC fl_acc
#define ACC_SUM acc_sum
#define WL FL_W64
#define IDX int64_t
#define LANES_LT lanes_lt_i64
#else
#error "FL_BITS must be 32 or 64"
#endif

#define SPLAT(s) ((VR){} + (REAL)(s))
/* the names of the static helpers of fl_vhelpers.inc: per dtype, ISA and width */
#if defined(FL_WIDE)
#define FH(name) FL_CAT3(name, _wide_, FN(h))
#else
#define FH(name) FL_CAT3(name, _, FN(h))
#endif
