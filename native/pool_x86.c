/*
 * pool_x86.c: the native addon's thread pool (x86-64 builds with our own sgemm, native/gemm_x86.c), on which our
 * products, OpenBLAS's products cut by columns (native/addon.c) and the kernels' gg_parallel_for run.
 *
 * A job is cut into chunks (ranges of a gg_range_fn) and every thread, the caller included, takes chunks until none
 * are left, as the threaded wasm module does (native/wasm_threads.c). So a worker that the OS has not scheduled yet
 * (a busy machine) costs nothing but its share: the caller takes the chunks it left. Each element's result never
 * depends on who computes it, and the chunks are fixed by the job, so the bits are the same on any number of threads.
 *
 * Hand-off: the caller writes the job, resets gg_done, sets gg_next to the number of chunks and bumps gg_generation
 * (waking sleeping workers). A thread takes chunk v - 1 when fetch-sub on gg_next returns v > 0; gg_next stays <= 0
 * between jobs, so a worker waking late takes nothing, or a chunk of the job then current, whose description is
 * stable until that chunk is counted in gg_done.
 *
 * Waiting: a recurrent layer's steps post a job every 20-50 us (a small product, a cell), and waking a sleeping
 * thread costs this VM tens of microseconds: a worker that slept after 5 us (200 pauses) between them made the
 * 2-thread GRU step slower than the 1-thread one (41 against 34 ms). So a worker waits GG_WORKER_WAIT_NS for the next
 * job and the caller GG_CALLER_WAIT_NS for chunks in progress, yielding the CPU every few pauses (other runnable
 * threads go first: on a busy machine the wait costs them little), then sleep (a condition variable, a futex).
 *
 * Naps: on a busy machine (another process on the cores) a worker that waits that way loses its CPU to the other
 * process (each yield hands it a time slice) and sees the next job late, after the caller has taken its chunks: the
 * 2-thread MLP step got 0.1-0.4 chunks a step from the worker and took up to 17% longer than the 1-thread one. A woken
 * thread gets the CPU back at once instead (the scheduler favours a sleeper over a process that has used its share).
 * So a worker that sees GG_LATE_IN_ROW jobs in a row more than GG_LATE_NS after their post, having waited for them and
 * lost its CPU to another thread meanwhile (the OS counts those switches; a host pausing the whole virtual CPU is no
 * reason to nap), sleeps right after each of the next GG_NAP_JOBS jobs (the caller wakes it with the next post), then
 * waits again. A worker
 * waiting on a CPU of its own sees a job within a microsecond or two, so a quiet machine's worker does not nap. Who
 * computes which chunk never changes the bits.
 *
 * No back-off: the caller used to compute jobs alone for a while (32 to 256 of them) after it had waited for a worker
 * that the OS stopped mid-chunk. Two A/Bs with it on and off (docs/benchmarks.md, "Adam in float32, and the pool
 * without its back-off") showed no gain on the 2-thread MLP, LSTM and GRU steps, quiet or beside a competing
 * process: a late worker costs the caller one wait of at most GG_CALLER_WAIT_NS (yielding), then a futex sleep, and
 * the yields already keep a 2-thread step at or under the 1-thread one on a busy machine. So it went.
 *
 * Choosing: whether a second thread pays for a job depends on the minute. On free cores it nearly halves a product;
 * beside a competing process the worker shares a CPU with it, the caller waits for chunks the OS holds up, and the
 * recurrent layers' 2-thread step (a job every 20-50 us) came out at 0.93-1.10x the 1-thread one from one run to the
 * next. So the caller times its jobs, each kind apart (the kernel and the sizes that set its cost: a product's m, n,
 * k), both ways: on the pool's threads and alone (the one-thread path, which gives the same bits), and runs each job
 * the way that has been faster for its kind (the threads where they take under GG_THREADS_GAIN of its time alone:
 * waking a worker and moving data between cores cost the jobs around it too). A kind that runs on the threads is timed there at every job, and alone
 * once every GG_PROBE_NEAR of its jobs (GG_PROBE_FAR where the threads have been 1.5x faster or more), so a machine
 * that turns busy shows at once. A kind that runs alone is timed on the threads in bursts: after GG_BURST_EVERY jobs
 * run alone, the next GG_BURST jobs of any kind go to the threads (timed one at a time, the first of a burst replacing
 * a kind's old figure), so a machine that turns quiet shows within a few steps. A job sent to the threads after jobs
 * run alone have left them idle long enough for the workers to sleep (GG_COLD_NS) is not counted: waking them is the
 * price of those jobs' choice, not of its kind (it starts a burst instead); idle time of the caller's own between its
 * jobs is a cost of the threads like any other. The figures are running means (weight GG_EST_WEIGHT), each sample
 * capped at twice the figure (one job the OS held up for a time slice moves it by GG_EST_WEIGHT at most); a kind's
 * first job on the threads (the pool's start, cold caches) is not counted, and its first GG_WARM_THREADS jobs go to
 * the threads before it is timed alone. Only the caller (holding gg_busy) reads and writes these. GRADGUARD_POOL_ADAPT=0
 * sends every job to the threads.
 *
 * Crowded cores: a kind's timings see its own jobs, not what a worker kept awake costs the rest of the step. Beside a
 * competing process, the pool ran 85% of the LSTM's jobs alone, and the worker, waiting (spinning, yielding) for the
 * next job on the threads, shared the CPUs with that process and the caller: the 2-thread step took 1.11-1.16x the
 * 1-thread one timed in the same rounds (the MLP's and CNN's 0.91-1.06x). So the caller also looks at the machine:
 * every GG_CROWD_EVERY_NS (at a job) it reads the idle time of the CPUs it may run on (/proc/stat) and the process's
 * own CPU time; what neither accounts for, over the last few spans between readings while the process ran jobs
 * (pool_crowd_x86.h), is other processes' (or the host's) use of those CPUs. Where fewer than GG_CROWD_ON CPUs are
 * left free of it, every job runs alone (the workers sleep) until more than GG_CROWD_OFF are, then a burst times the
 * threads again. A process that yields its CPU at once counts as holding it all the same (an idle PyTorch's OpenBLAS
 * threads spin ~120 ms after its last product). A 3.4 us read every 50 ms; Linux only, elsewhere the timings decide.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RUSAGE_THREAD */
#endif
#include "gemm_x86.h"

/* Chunks per thread for a product (ours and OpenBLAS on the pool): two, so that a thread the OS holds up leaves half a
 * share to wait for, but one under 16 MFLOP a chunk, where repacking the other operand per chunk costs more. */
int gg_gemm_chunks_per_thread(double flops, int nt) { return flops >= 2.0 * nt * 16e6 ? 2 : 1; }

#if defined(__x86_64__) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "pool_crowd_x86.h"

#define GG_MAX_THREADS 16
#define GG_WORKER_WAIT_NS 150000.0 /* a worker waits this long for the next job before it sleeps */
#define GG_CALLER_WAIT_NS 50000.0 /* the caller waits this long for chunks in progress before it sleeps */
#define GG_YIELD_EVERY 32          /* pauses (~25 ns each here) between two sched_yield()s while waiting */
#define GG_LATE_NS 20000.0 /* a waiting worker that sees a job this long after its post was off its CPU meanwhile */
#define GG_LATE_IN_ROW 2   /* jobs in a row so seen after which a worker naps */
#define GG_NAP_JOBS 16     /* sleeping right after each of this many jobs instead of waiting, then it waits again */
#define GG_KINDS 256       /* job kinds whose timings the caller keeps (a direct-mapped table; a clash starts over) */
#define GG_WARM_THREADS 3  /* a kind's first jobs, on the threads, before the caller alone is tried */
#define GG_PROBE_NEAR 32   /* a kind that runs on the threads tried alone once every this many of its jobs, ... */
#define GG_PROBE_FAR 256   /* ... or this many where the threads have been 1.5x faster or more */
#define GG_BURST_EVERY 512 /* jobs run alone after which a burst of jobs goes to the threads to time them again */
#define GG_BURST 12        /* jobs in a burst */
#define GG_COLD_NS 100000.0 /* the threads idle this long: the workers may be asleep (they wait GG_WORKER_WAIT_NS) */
#define GG_EST_WEIGHT 0.25 /* a new sample's weight in a kind's running estimate */
#define GG_THREADS_GAIN 0.9 /* a kind goes to the threads where they take under this share of its time alone */
#define GG_CROWD_EVERY_NS 50e6 /* the caller reads the CPUs' idle time at most this often */
#define GG_CROWD_ON 1.55        /* free CPUs under which every job runs alone, ... */
#define GG_CROWD_OFF 1.75       /* ... until more than this many are free */

typedef struct {
  gg_range_fn fn; /* fn over [0, n) in chunks of `step` */
  const void *args;
  gg_i n, step;
  int chunks;
} gg_job_t;

static int gg_nthreads = 1;      /* threads a job may use, the caller included */
static int gg_pool_size = 0;     /* workers started */
static int gg_pool_failed = 0;   /* a worker could not start or allocate: stay single-threaded */
static gg_job_t gg_job;
static atomic_uint gg_generation;
static atomic_int gg_next;         /* chunks not yet taken (<= 0: none) */
static atomic_int gg_done;         /* chunks finished */
static atomic_int gg_sleepers;     /* workers asleep on gg_pool_cv (or about to be) */
static atomic_int gg_caller_waits; /* the caller is asleep on gg_done (or about to be) */
static atomic_int gg_job_threads;  /* threads the current job may use, the caller included (workers 1..n-1) */
static atomic_int gg_hold;         /* tests: workers take no chunks, as if the OS never ran them */
static atomic_int gg_by_workers;   /* chunks computed by workers, in all (tests) */
static atomic_int gg_worker_ok;
static atomic_llong gg_post_ns;    /* when the caller posted the current job, ns (stored before gg_generation moves) */
static atomic_int gg_naps;         /* jobs after which a worker slept at once, in all (tests) */
static int gg_last_chunks;        /* chunks of the last job, however it ran (tests) */

/* One kind of job: its key, and how long it took on the pool's threads and alone (ns, running estimates). */
typedef struct {
  uint64_t key;
  double threads, alone;
  int nthreads, nalone; /* jobs of this kind run each way (the first on the threads not in its estimate) */
  int since;            /* jobs on the threads since the caller alone was last tried */
  unsigned burst;       /* the burst of its last timing on the threads */
} gg_kind_t;
static gg_kind_t gg_kinds[GG_KINDS];
static int gg_adapt = -1;        /* 1: choose per kind; 0: every job on the threads (GRADGUARD_POOL_ADAPT=0); -1: unread */
static int gg_force;             /* tests: 0 choose, 1 the threads, 2 alone */
static double gg_fake_alone_ns, gg_fake_threads_ns; /* tests: the timings the choice sees instead of the clock's */
static double gg_jobs, gg_jobs_alone;               /* jobs the pool was offered and ran alone, in all (tests, bench) */
static double gg_threads_end;   /* when the last job on the threads ended, ns */
static int gg_burst;            /* jobs left that go to the threads to be timed there */
static unsigned gg_burst_id;    /* bursts started */
static int gg_alone_run;        /* jobs run alone since the last burst */
static int gg_alone_since;      /* jobs run alone since the last job on the threads */
static int gg_crowded;          /* other processes hold the CPUs: every job alone */
static double gg_crowd_free = -1; /* CPUs free of other processes at the last reading (-1: not read) */
static double gg_crowd_fake = -1; /* tests: the free CPUs, instead of measuring (-1: measure) */
static double gg_crowd_next;    /* when to read again, ns */
static double gg_crowded_jobs;  /* jobs run alone because the CPUs were crowded, in all (tests, bench) */
static pthread_mutex_t gg_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gg_pool_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t gg_busy = PTHREAD_MUTEX_INITIALIZER;

#ifdef __linux__
#include <sys/resource.h>
/* Times the OS took this thread's CPU for another runnable thread (preempted, or given away by a yield that found
 * one): a late sighting of a job counts only with one of these, not when the host paused the whole virtual CPU. */
static long gg_switches(void) {
  struct rusage u;
  return getrusage(RUSAGE_THREAD, &u) == 0 ? u.ru_nivcsw : -1;
}
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
static void gg_futex_wait(atomic_int *addr, int val) {
  syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void gg_futex_wake(atomic_int *addr) { syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }
#else
static long gg_switches(void) { return -1; } /* unknown: lateness alone decides */
static void gg_futex_wait(atomic_int *addr, int val) {
  (void)addr, (void)val;
  sched_yield();
}
static void gg_futex_wake(atomic_int *addr) { (void)addr; }
#endif

static double gg_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return 1e9 * (double)t.tv_sec + (double)t.tv_nsec;
}

/* The CPUs free of other processes are `free`: every job alone under GG_CROWD_ON, the threads timed again (a burst)
 * once over GG_CROWD_OFF. */
static void gg_crowd_set(double free) {
  gg_crowd_free = free;
  if (!gg_crowded && free < GG_CROWD_ON) {
    gg_crowded = 1;
  } else if (gg_crowded && free > GG_CROWD_OFF) {
    gg_crowded = 0;
    gg_burst = GG_BURST;
    gg_burst_id++;
    gg_alone_run = 0;
  }
}

/* At a job, now and then: the CPUs free of other processes read (native/pool_crowd_x86.h). */
static void gg_crowd_check(double now) {
  if (gg_crowd_fake >= 0 || now < gg_crowd_next) return;
  gg_crowd_next = now + GG_CROWD_EVERY_NS;
  double free = gg_cpus_free(now);
  if (free >= 0) gg_crowd_set(free);
}

/* Pauses until *v != old or `ns` have passed, yielding the CPU every GG_YIELD_EVERY pauses; returns the last value. */
static unsigned gg_wait_change(atomic_uint *v, unsigned old, double ns) {
  unsigned now = atomic_load(v);
  double until = gg_now_ns() + ns;
  for (int spin = 1; now == old; spin++) {
    _mm_pause();
    if (spin % GG_YIELD_EVERY == 0) {
      if (gg_now_ns() > until) break;
      sched_yield();
    }
    now = atomic_load(v);
  }
  return now;
}

/* Chunk c of the current job. */
static void gg_run_chunk(int tid, int c) {
  const gg_job_t *j = &gg_job;
  gg_i lo = (gg_i)c * j->step, hi = lo + j->step < j->n ? lo + j->step : j->n;
  if (lo < hi) j->fn(tid, lo, hi, j->args);
}

/* Takes and computes chunks of the current job until none are left; returns how many it computed. */
static int gg_work(int tid) {
  for (int mine = 0;; mine++) {
    /* tests (gg_pool_hold(2)): the caller leaves the last chunk to a worker, which stops there until the caller has
     * gone to sleep waiting for it, as a busy machine's OS may stop a worker in the middle of a chunk */
    int stop = atomic_load(&gg_hold) == 2;
    if (stop && tid == 0 && atomic_load(&gg_next) <= 1) return mine;
    int v = atomic_fetch_sub(&gg_next, 1);
    if (v <= 0) return mine;
    int chunks = gg_job.chunks; /* read before the chunk is counted: the job may change right after */
    while (stop && tid != 0 && !atomic_load(&gg_caller_waits)) _mm_pause();
    gg_run_chunk(tid, v - 1);
    if (tid != 0) atomic_fetch_add_explicit(&gg_by_workers, 1, memory_order_relaxed);
    if (atomic_fetch_add(&gg_done, 1) + 1 == chunks && atomic_load(&gg_caller_waits)) gg_futex_wake(&gg_done);
  }
}

/* The caller, after its own chunks: waits until the workers' chunks in progress are done. */
static void gg_wait_done(int chunks) {
  int d = atomic_load(&gg_done);
  double until = gg_now_ns() + GG_CALLER_WAIT_NS;
  for (int spin = 1; d < chunks; spin++) {
    _mm_pause();
    if (spin % GG_YIELD_EVERY == 0 && gg_now_ns() > until) break;
    d = atomic_load(&gg_done);
  }
  while (d < chunks) {
    atomic_store(&gg_caller_waits, 1);
    d = atomic_load(&gg_done);
    if (d < chunks) gg_futex_wait(&gg_done, d);
    atomic_store(&gg_caller_waits, 0);
    d = atomic_load(&gg_done);
  }
}

/* The caller: posts the job in gg_job for nt threads, computes chunks too, returns when all are done. */
static void gg_run_job(int nt) {
  int chunks = gg_job.chunks;
  atomic_store_explicit(&gg_job_threads, nt, memory_order_relaxed);
  atomic_store_explicit(&gg_done, 0, memory_order_relaxed);
  atomic_store(&gg_next, chunks);
  atomic_store_explicit(&gg_post_ns, (long long)gg_now_ns(), memory_order_relaxed);
  atomic_fetch_add(&gg_generation, 1);
  int asleep = atomic_load(&gg_sleepers) > 0;
  if (asleep) {
    pthread_mutex_lock(&gg_pool_mu);
    pthread_cond_broadcast(&gg_pool_cv);
    pthread_mutex_unlock(&gg_pool_mu);
  }
  gg_work(0);
  if (atomic_load(&gg_done) < chunks) gg_wait_done(chunks);
}

static void *gg_worker(void *arg) {
  int id = (int)(intptr_t)arg;
  unsigned seen = 0;
  if (!gg_gemm_thread_init()) {
    atomic_store(&gg_worker_ok, -1);
    return NULL;
  }
  atomic_fetch_add(&gg_worker_ok, 1);
  int nap = 0;  /* jobs left after which this worker sleeps at once (it was found off its CPU while it waited) */
  int lates = 0; /* jobs in a row it saw late, having waited for them */
  for (;;) {
    /* Wait a little (the next job of a training step usually follows soon), then sleep; or sleep at once while
     * napping: a worker that waits on a busy machine loses its CPU to the other processes and sees the job late. */
    long switches = nap > 0 ? 0 : gg_switches();
    unsigned gen = nap > 0 ? atomic_load(&gg_generation) : gg_wait_change(&gg_generation, seen, GG_WORKER_WAIT_NS);
    if (gen != seen) {
      if (nap == 0) {
        double late = gg_now_ns() - (double)atomic_load_explicit(&gg_post_ns, memory_order_relaxed);
        lates = late > GG_LATE_NS && (switches < 0 || gg_switches() != switches) ? lates + 1 : 0;
        if (lates >= GG_LATE_IN_ROW) {
          nap = GG_NAP_JOBS;
          lates = 0;
        }
      }
    } else {
      if (nap > 0) {
        nap--;
        atomic_fetch_add_explicit(&gg_naps, 1, memory_order_relaxed);
      }
      pthread_mutex_lock(&gg_pool_mu);
      atomic_fetch_add(&gg_sleepers, 1);
      while ((gen = atomic_load(&gg_generation)) == seen) pthread_cond_wait(&gg_pool_cv, &gg_pool_mu);
      atomic_fetch_sub(&gg_sleepers, 1);
      pthread_mutex_unlock(&gg_pool_mu);
    }
    seen = gen;
    if (nap == 0 && atomic_load(&gg_hold) == 3) nap = GG_NAP_JOBS; /* tests: every job seen late */
    if (id < atomic_load_explicit(&gg_job_threads, memory_order_relaxed) && atomic_load(&gg_hold) != 1) gg_work(id);
  }
  return NULL;
}

/* Starts the workers once; 0 if the pool cannot be used. Called with gg_busy held. */
static int gg_pool_start(void) {
  if (gg_pool_failed) return 0;
  if (gg_pool_size >= gg_nthreads - 1) return 1;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  while (gg_pool_size < gg_nthreads - 1) {
    pthread_t th;
    int want = atomic_load(&gg_worker_ok) + 1;
    if (pthread_create(&th, &attr, gg_worker, (void *)(intptr_t)(gg_pool_size + 1)) != 0) {
      gg_pool_failed = 1;
      break;
    }
    while (atomic_load(&gg_worker_ok) >= 0 && atomic_load(&gg_worker_ok) < want) _mm_pause();
    if (atomic_load(&gg_worker_ok) < 0) {
      gg_pool_failed = 1;
      break;
    }
    gg_pool_size++;
  }
  pthread_attr_destroy(&attr);
  return !gg_pool_failed;
}

uint64_t gg_pool_key(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  uint64_t h = 0x9e3779b97f4a7c15ull, v[4] = {a, b, c, d};
  for (int i = 0; i < 4; i++) {
    h ^= v[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 31, h *= 0xbf58476d1ce4e5b9ull, h ^= h >> 29;
  }
  return h;
}

/* The kind's entry (a new one, timings unknown, where another kind held the slot). */
static gg_kind_t *gg_kind(uint64_t key) {
  gg_kind_t *k = &gg_kinds[key % GG_KINDS];
  if (k->key != key || (k->nthreads == 0 && k->nalone == 0)) *k = (gg_kind_t){key, 0, 0, 0, 0, 0, 0};
  return k;
}

/* 1 where this job of kind k should run alone, 2 where it runs alone because the CPUs are crowded. */
static int gg_choose_alone(gg_kind_t *k) {
  if (gg_force) return gg_force == 2;
  if (!gg_adapt || atomic_load(&gg_hold)) return 0; /* tests of the workers' rules: every job to them */
  if (gg_crowded) return 2; /* the workers would take CPU time from other processes, and they from the caller */
  if (gg_burst > 0 || k->nthreads < GG_WARM_THREADS) return 0;
  if (k->nalone < 2) return 1;
  if (k->threads > GG_THREADS_GAIN * k->alone) return 1; /* the threads are timed again in the next burst */
  if (++k->since >= (k->alone < 1.5 * k->threads ? GG_PROBE_NEAR : GG_PROBE_FAR)) {
    k->since = 0;
    return 1;
  }
  return 0;
}

/* A job of kind k took ns, run alone or on the threads (hot: the workers were waiting for it, not asleep; burst: one
 * of a burst's jobs). */
static void gg_note(gg_kind_t *k, int alone, int hot, int burst, double ns) {
  if (alone ? gg_fake_alone_ns > 0 : gg_fake_threads_ns > 0) ns = alone ? gg_fake_alone_ns : gg_fake_threads_ns;
  double *est = alone ? &k->alone : &k->threads;
  int first = alone ? k->nalone++ == 0 : k->nthreads++ == 0;
  if (!alone && (first || !hot)) return; /* the pool's start, or workers woken from sleep: not this kind's cost */
  if (*est <= 0 || (!alone && burst && k->threads > GG_THREADS_GAIN * k->alone && gg_burst_id != k->burst)) {
    *est = ns; /* a kind's first timing, or a kind that ran alone: its first in this burst (the last is old) */
    if (!alone) k->burst = gg_burst_id;
  } else {
    *est += GG_EST_WEIGHT * ((ns < 2 * *est ? ns : 2 * *est) - *est);
  }
}

void gg_pool_exec(gg_range_fn fn, gg_range_fn alone, const void *args, gg_i n, gg_i step, int nt, uint64_t key) {
  if (nt <= 1 || n <= 0 || step < 1 || pthread_mutex_trylock(&gg_busy) != 0) {
    if (n > 0) alone(0, 0, n, args);
    return;
  }
  if (!gg_pool_start()) {
    pthread_mutex_unlock(&gg_busy);
    alone(0, 0, n, args);
    return;
  }
  if (gg_adapt < 0) {
    const char *e = getenv("GRADGUARD_POOL_ADAPT");
    gg_adapt = !(e && e[0] == '0' && e[1] == 0);
  }
  int chunks = (int)((n + step - 1) / step);
  gg_last_chunks = chunks;
  gg_jobs++;
  gg_kind_t *k = gg_kind(key);
  double t0 = gg_now_ns();
  if (gg_adapt && !gg_force) gg_crowd_check(t0);
  int solo = gg_choose_alone(k), hot = 1, burst = gg_burst > 0;
  if (solo) {
    gg_jobs_alone++;
    gg_alone_since++;
    alone(0, 0, n, args);
    if (solo == 2)
      gg_crowded_jobs++; /* no bursts while crowded: leaving it starts one */
    else if (++gg_alone_run >= GG_BURST_EVERY && !gg_force) { /* time the threads again: a burst of jobs on them */
      gg_alone_run = 0;
      gg_burst = GG_BURST;
      gg_burst_id++;
    }
  } else {
    /* workers left idle this long by jobs run alone have gone to sleep: waking them is the cost of those jobs' choice,
     * not of this job's kind; the next jobs go to the threads too, now awake, to be timed. (Idle time of the caller's
     * own, between its jobs, is a cost of the threads like any other.) */
    hot = gg_alone_since == 0 || t0 - gg_threads_end < GG_COLD_NS;
    gg_alone_since = 0;
    if (gg_burst > 0)
      gg_burst--;
    else if (!hot && !gg_force && gg_adapt && gg_jobs > 1) {
      gg_burst = GG_BURST;
      gg_burst_id++;
      burst = 1;
    }
    gg_job = (gg_job_t){fn, args, n, step, chunks};
    gg_run_job(nt > gg_pool_size + 1 ? gg_pool_size + 1 : nt);
  }
  double t1 = gg_now_ns();
  if (!solo) gg_threads_end = t1;
  gg_note(k, solo != 0, hot, burst, t1 - t0);
  pthread_mutex_unlock(&gg_busy);
}

double gg_pool_choose(int mode, double alone_ns, double threads_ns) {
  pthread_mutex_lock(&gg_busy);
  gg_force = mode == 1 || mode == 2 ? mode : 0;
  gg_fake_alone_ns = alone_ns > 0 ? alone_ns : 0;
  gg_fake_threads_ns = threads_ns > 0 ? threads_ns : 0;
  if (mode == 0) { /* 0: choose, the timings so far forgotten; 3: choose, keeping them; 1, 2: forced (kept) */
    for (int i = 0; i < GG_KINDS; i++) gg_kinds[i] = (gg_kind_t){0, 0, 0, 0, 0, 0, 0};
    gg_burst = 0, gg_alone_run = 0, gg_alone_since = 0;
  }
  pthread_mutex_unlock(&gg_busy);
  return gg_jobs_alone;
}

double gg_pool_jobs(int alone) { return alone == 2 ? gg_crowded_jobs : alone ? gg_jobs_alone : gg_jobs; }

double gg_pool_crowd(double free) {
  pthread_mutex_lock(&gg_busy);
  if (free >= 0) { /* a fake */
    gg_crowd_fake = free;
    gg_crowd_set(free);
  } else if (free < 0) { /* measure afresh (NaN: only the figure asked) */
    gg_crowd_fake = -1, gg_crowd_free = -1;
    gg_cpus_forget();
    gg_crowd_next = 0;
  }
  double seen = gg_crowd_free;
  pthread_mutex_unlock(&gg_busy);
  return seen;
}

int gg_pool_nthreads(void) { return gg_nthreads; }

void gg_gemm_own_threads(int n) { gg_nthreads = n < 1 ? 1 : n > GG_MAX_THREADS ? GG_MAX_THREADS : n; }

double gg_pool_hold(int hold) {
  atomic_store(&gg_hold, hold >= 1 && hold <= 3 ? hold : 0);
  return (double)atomic_load(&gg_by_workers);
}

double gg_pool_naps(void) { return (double)atomic_load(&gg_naps); }

double gg_pool_last_chunks(void) { return (double)gg_last_chunks; }

/* fn over [0, n) in ranges of `step` (the last may be shorter) that the pool's threads take as they come; the
 * caller alone with one thread, or while the pool is busy (another thread's product). */
static void gg_steps(gg_range_fn fn, gg_range_fn alone, const void *args, gg_i n, gg_i step, uint64_t key) {
  if (n <= 0) return;
  if (step < 1 || n <= step)
    alone(0, 0, n, args);
  else
    gg_pool_exec(fn, alone, args, n, step, gg_nthreads, key);
}

void gg_parallel_steps(gg_range_fn fn, gg_range_fn alone, const void *args, gg_i n, gg_i step, uint64_t key) {
  gg_steps(fn, alone, args, n, step, gg_pool_key((uint64_t)(uintptr_t)fn, (uint64_t)n, (uint64_t)step, key));
}

/* gg_parallel_for (kernels.h) on the same pool: [0, n) in ranges of multiples of `unit`, four per thread. Below ~2^20
 * multiply-adds of work, with one thread, or while the pool is busy (another thread's product), the caller does all. */
void gg_parallel_for(gg_range_fn fn, const void *args, gg_i n, gg_i unit, double work) {
  if (n <= 0) return;
  if (unit < 1) unit = 1;
  int nt = gg_nthreads;
  if (nt <= 1 || work < (double)(1 << 20) || n < 2 * unit) {
    fn(0, 0, n, args);
    return;
  }
  /* four chunks per thread, multiples of unit: a thread held up by the OS leaves little to wait for */
  gg_i chunks = 4 * (gg_i)nt, units = (n + unit - 1) / unit;
  if (chunks > units) chunks = units;
  gg_i step = (units + chunks - 1) / chunks * unit;
  gg_steps(fn, fn, args, n, step, gg_pool_key((uint64_t)(uintptr_t)fn, (uint64_t)n, (uint64_t)step, (uint64_t)work));
}

#else /* no AVX2+FMA: no pool */

void gg_parallel_for(gg_range_fn fn, const void *args, gg_i n, gg_i unit, double work) {
  (void)unit, (void)work;
  if (n > 0) fn(0, 0, n, args);
}
void gg_parallel_steps(gg_range_fn fn, gg_range_fn alone, const void *args, gg_i n, gg_i step, uint64_t key) {
  (void)fn, (void)step, (void)key;
  if (n > 0) alone(0, 0, n, args);
}
uint64_t gg_pool_key(uint64_t a, uint64_t b, uint64_t c, uint64_t d) { return a ^ b ^ c ^ d; }
double gg_pool_choose(int mode, double alone_ns, double threads_ns) {
  (void)mode, (void)alone_ns, (void)threads_ns;
  return 0;
}
double gg_pool_jobs(int alone) {
  (void)alone;
  return 0;
}
double gg_pool_hold(int hold) {
  (void)hold;
  return 0;
}
double gg_pool_last_chunks(void) { return 0; }
double gg_pool_naps(void) { return 0; }
double gg_pool_crowd(double free) {
  (void)free;
  return -1;
}
void gg_gemm_own_threads(int n) { (void)n; }

#endif
