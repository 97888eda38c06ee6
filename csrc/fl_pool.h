/* The parallel loop every kernel runs through: a fixed partition into blocks, run by a
 * small pthread pool, reduced in block order.
 *
 * Determinism: the partition depends only on the problem size (never on the thread
 * count), each block's partial sum is computed by one thread in a fixed order, and the
 * partials are added in block order. So a result is bitwise the same for 1 or 16
 * threads, and for the serial fallback used when the pool is busy.
 */
#ifndef FL_POOL_H
#define FL_POOL_H

#include <stdint.h>

/* Work on units [lo, hi) of a job; return the float64 partial sum of its losses. */
typedef double fl_block_fn(const void *job, int64_t lo, int64_t hi);

/* Run fn over units [0, n_units) in blocks of `per_block` units (the last one shorter);
 * return the sum of the blocks' partials, added in block order. */
double fl_run(fl_block_fn *fn, const void *job, int64_t n_units, int64_t per_block);

/* Units per block for units costing `unit_cost` element-operations each: about 32k
 * element-operations per block, enough to amortize scheduling, small enough to balance. */
int64_t fl_per_block(int64_t unit_cost);

void fl_pool_set_threads(int n);
int fl_pool_get_threads(void);

#endif
