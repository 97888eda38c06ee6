/* The names the kernel templates (*.inc) are written in, for one dtype: include with
 * FL_BITS 32 or 64 and FL_ISA (base / avx2) defined. Re-including it switches dtype. */
#undef REAL
#undef VR
#undef VI
#undef FN
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
#undef VLOG1P_UNIT
#undef HSUM
#undef HMAX
#undef ACC_ADD
#undef WL
#undef IDX
#undef LANES_LT
#undef SPLAT

#define FL_CAT3_(a, b, c) a##b##c
#define FL_CAT3(a, b, c) FL_CAT3_(a, b, c)

#if FL_BITS == 32
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
#define VLOG1P_UNIT log1p_unit_f32
#define HSUM(v) ((double)hsum_f32(v))
#define HMAX hmax_f32
#define ACC_ADD acc_add_f32
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
#define VLOG1P_UNIT log1p_unit_f64
#define HSUM(v) hsum_f64(v)
#define HMAX hmax_f64
#define ACC_ADD acc_add_f64
#define WL FL_W64
#define IDX int64_t
#define LANES_LT lanes_lt_i64
#else
#error "FL_BITS must be 32 or 64"
#endif

#define SPLAT(s) ((VR){} + (REAL)(s))
