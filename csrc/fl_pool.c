/* A small pthread pool for fl_run (see fl_pool.h).
 *
 * Why not OpenMP: libgomp's pool does not survive fork() (a child that calls a kernel
 * hangs), and a second OpenMP runtime next to the one torch bundles made both slower.
 * This pool is private to fastloss, sleeps on a condition variable when idle (it never
 * spins, so it does not steal the cores torch or numba are using), and is rebuilt from
 * scratch in a forked child: pthread_atfork's child handler forgets the parent's
 * threads (which do not exist in the child) and re-initializes every lock, so the first
 * parallel call in the child starts new workers.
 *
 * The calling thread works too, so n threads means n - 1 workers. One call at a time uses
 * the pool; a call from another thread made meanwhile runs serially (same result, the
 * partition being fixed).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "fl_pool.h"

#define FL_MAX_THREADS 256
#define FL_STACK_PARTIALS 512
#define FL_BLOCK_WORK 32768
/* Fewer blocks than this run serially: waking a worker costs more than it saves on
 * this kind of machine (2-core VM, cross_entropy C kernel, 1 vs 2 threads: 64x1000
 * forward 18.5 vs 42.5 us, 512x100 38.7 vs 63.8 us; from 2048x100, 7 blocks, two
 * threads win: 143 vs 99 us). Serial and parallel give the same bits. */
#define FL_MIN_PARALLEL_BLOCKS 4

typedef struct {
    pthread_mutex_t lock;     /* guards everything below and the condition variables */
    pthread_cond_t wake;      /* workers wait here for a new generation */
    pthread_cond_t done;      /* the caller waits here for running == 0 */
    pthread_mutex_t busy;     /* held by the thread whose call is using the pool */
    int n_workers;            /* workers started in this process */
    uint64_t born[FL_MAX_THREADS]; /* the generation current when each worker was started */
    uint64_t generation;      /* bumped once per parallel call */
    int active;               /* workers with id < active take part in this call */
    int running;              /* of those, how many have not finished yet */
    fl_block_fn *fn;          /* the call: fn(job, lo, hi) over blocks of per_block units */
    const void *job;
    int64_t n_units, per_block, n_blocks;
    int64_t next;             /* next block to take (atomic) */
    double *partials;
} fl_pool;

static fl_pool P;
static int wanted_threads = 1;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void pool_reset(void)
{
    pthread_mutex_init(&P.lock, NULL);
    pthread_cond_init(&P.wake, NULL);
    pthread_cond_init(&P.done, NULL);
    pthread_mutex_init(&P.busy, NULL);
    P.n_workers = 0;
    P.generation = 0;
    P.active = 0;
    P.running = 0;
}

/* In a forked child only the forking thread exists: drop the parent's workers (and any
 * lock state another parent thread held at the fork) and start over. */
static void after_fork_child(void) { pool_reset(); }

static void pool_init(void)
{
    pool_reset();
    pthread_atfork(NULL, NULL, after_fork_child);
}

static void take_blocks(void)
{
    int64_t b;
    while ((b = __atomic_fetch_add(&P.next, 1, __ATOMIC_RELAXED)) < P.n_blocks) {
        int64_t lo = b * P.per_block;
        int64_t hi = lo + P.per_block < P.n_units ? lo + P.per_block : P.n_units;
        P.partials[b] = P.fn(P.job, lo, hi);
    }
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    pthread_mutex_lock(&P.lock);
    uint64_t seen = P.born[id];   /* not P.generation: the call that started us bumped it */
    for (;;) {
        while (P.generation == seen)
            pthread_cond_wait(&P.wake, &P.lock);
        seen = P.generation;
        if (id >= P.active)
            continue;
        pthread_mutex_unlock(&P.lock);
        take_blocks();
        pthread_mutex_lock(&P.lock);
        if (--P.running == 0)
            pthread_cond_signal(&P.done);
    }
    return NULL;
}

/* Start workers up to n (called with P.lock held). Workers block every signal, so
 * signals keep going to the interpreter's threads. */
static void start_workers(int n)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (P.n_workers < n) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        P.born[P.n_workers] = P.generation;
        int rc = pthread_create(&th, &attr, worker, (void *)(intptr_t)P.n_workers);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break;   /* fewer workers: still correct, only slower */
        P.n_workers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static double run_serial(fl_block_fn *fn, const void *job, int64_t n_units, int64_t per_block,
                         int64_t n_blocks)
{
    double total = 0.0;
    for (int64_t b = 0; b < n_blocks; b++) {
        int64_t lo = b * per_block;
        int64_t hi = lo + per_block < n_units ? lo + per_block : n_units;
        total += fn(job, lo, hi);
    }
    return total;
}

double fl_run(fl_block_fn *fn, const void *job, int64_t n_units, int64_t per_block)
{
    if (n_units <= 0)
        return 0.0;
    if (per_block < 1)
        per_block = 1;
    int64_t n_blocks = (n_units + per_block - 1) / per_block;
    int threads = __atomic_load_n(&wanted_threads, __ATOMIC_RELAXED);
    if (n_blocks < FL_MIN_PARALLEL_BLOCKS || threads <= 1)
        return run_serial(fn, job, n_units, per_block, n_blocks);
    pthread_once(&init_once, pool_init);
    if (pthread_mutex_trylock(&P.busy) != 0)
        return run_serial(fn, job, n_units, per_block, n_blocks);

    double stack_partials[FL_STACK_PARTIALS];
    double *partials = stack_partials;
    if (n_blocks > FL_STACK_PARTIALS) {
        partials = malloc((size_t)n_blocks * sizeof(double));
        if (partials == NULL) {
            pthread_mutex_unlock(&P.busy);
            return run_serial(fn, job, n_units, per_block, n_blocks);
        }
    }
    P.fn = fn;
    P.job = job;
    P.n_units = n_units;
    P.per_block = per_block;
    P.n_blocks = n_blocks;
    P.partials = partials;
    __atomic_store_n(&P.next, 0, __ATOMIC_RELAXED);

    pthread_mutex_lock(&P.lock);
    if (P.n_workers < threads - 1)
        start_workers(threads - 1);
    int active = threads - 1;
    if (active > P.n_workers)
        active = P.n_workers;
    if (active > n_blocks - 1)
        active = (int)(n_blocks - 1);
    P.active = active;
    P.running = active;
    P.generation++;
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.lock);

    take_blocks();

    pthread_mutex_lock(&P.lock);
    while (P.running > 0)
        pthread_cond_wait(&P.done, &P.lock);
    pthread_mutex_unlock(&P.lock);
    pthread_mutex_unlock(&P.busy);

    double total = 0.0;
    for (int64_t b = 0; b < n_blocks; b++)
        total += partials[b];
    if (partials != stack_partials)
        free(partials);
    return total;
}

int64_t fl_per_block(int64_t unit_cost)
{
    if (unit_cost < 1)
        unit_cost = 1;
    int64_t per = FL_BLOCK_WORK / unit_cost;
    return per < 1 ? 1 : per;
}

void fl_pool_set_threads(int n)
{
    if (n < 1)
        n = 1;
    if (n > FL_MAX_THREADS)
        n = FL_MAX_THREADS;
    __atomic_store_n(&wanted_threads, n, __ATOMIC_RELAXED);
}

int fl_pool_get_threads(void) { return __atomic_load_n(&wanted_threads, __ATOMIC_RELAXED); }
