/*
 * pool_crowd_x86.h: how many of the CPUs this process may run on are free of other processes (and of the host, in a
 * virtual machine), for the thread pool's choice between its threads and the caller alone (native/pool_x86.c,
 * "Crowded cores"). Included by pool_x86.c only; its caller holds the pool's lock.
 *
 * What the CPUs' idle time (/proc/stat, in clock ticks of 10 ms) and the process's own CPU time do not account for,
 * over the last GG_CROWD_SPANS spans between readings, is other processes' use of those CPUs. Linux only: elsewhere
 * no figure.
 */
#ifndef GG_POOL_CROWD_X86_H
#define GG_POOL_CROWD_X86_H

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GG_CROWD_SPANS 4 /* spans between readings the other processes' share is taken over (ticks of 10 ms) */
#define GG_CROWD_GAP_NS 150e6 /* readings further apart than this: the process ran no pool jobs meanwhile */

/* A reading of the CPUs' idle time (/proc/stat) and the process's CPU time, or the span between two. */
typedef struct {
  double wall, idle, own; /* ns */
} gg_reading_t;
static gg_reading_t gg_last_reading; /* the last reading (wall 0: none) */
static gg_reading_t gg_spans[GG_CROWD_SPANS];
static int gg_nspans, gg_span_next; /* spans in gg_spans (GG_CROWD_SPANS at most), where the next goes */

#ifdef __linux__
#include <fcntl.h>
#include <unistd.h>
static int gg_stat_fd = -2; /* /proc/stat, kept open (-1: unreadable) */
static cpu_set_t gg_stat_cpus; /* the CPUs this process may run on */
static double gg_tick_ns;

/* Now: the idle time of the CPUs this process may run on and its CPU time; how many CPUs those are (0: unknown). */
static int gg_read_cpus(gg_reading_t *r, double now) {
  static char buf[1 << 16];
  if (gg_stat_fd == -2) {
    gg_stat_fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    long hz = sysconf(_SC_CLK_TCK);
    gg_tick_ns = hz > 0 ? 1e9 / (double)hz : 1e7;
    if (sched_getaffinity(0, sizeof gg_stat_cpus, &gg_stat_cpus) != 0) CPU_ZERO(&gg_stat_cpus);
  }
  if (gg_stat_fd < 0) return 0;
  ssize_t len = pread(gg_stat_fd, buf, sizeof buf - 1, 0);
  if (len <= 0) return 0;
  buf[len] = 0;
  double idle = 0;
  int cpus = 0;
  /* "cpu  ..." (all), then "cpuN user nice system idle iowait ..." in clock ticks, before any other line; a line the
   * buffer cut off (a machine with thousands of CPUs) is not read */
  char *end;
  for (char *line = buf; strncmp(line, "cpu", 3) == 0 && (end = strchr(line, '\n')); line = end + 1) {
    char *p = line + 3;
    if (*p < '0' || *p > '9') continue;
    long cpu = strtol(p, &p, 10);
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &gg_stat_cpus)) continue;
    double f[5];
    for (int i = 0; i < 5; i++) f[i] = (double)strtoull(p, &p, 10);
    idle += f[3] + f[4]; /* idle and waiting for I/O */
    cpus++;
  }
  struct timespec t;
  if (!cpus || clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) != 0) return 0;
  *r = (gg_reading_t){now, idle * gg_tick_ns, 1e9 * (double)t.tv_sec + (double)t.tv_nsec};
  return cpus;
}
#else
static int gg_read_cpus(gg_reading_t *r, double now) {
  (void)r, (void)now;
  return 0;
}
#endif

/* The readings so far forgotten: the next figure comes GG_CROWD_SPANS spans on. */
static void gg_cpus_forget(void) { gg_nspans = 0, gg_span_next = 0, gg_last_reading.wall = 0; }

/* Reads now: the CPUs free of other processes over the last GG_CROWD_SPANS spans between readings; -1 until there
 * are that many (or the file is unreadable). A span longer than GG_CROWD_GAP_NS is left out: the process ran no jobs
 * in it (the benchmark's PyTorch blocks between ours, a training loop's evaluation in JavaScript), and what other
 * processes did then says nothing about its jobs (the first version counted it, and ran the benchmark's next block
 * of ours alone after PyTorch's on a quiet machine). */
static double gg_cpus_free(double now) {
  gg_reading_t r;
  int cpus = gg_read_cpus(&r, now);
  if (!cpus) return -1;
  gg_reading_t last = gg_last_reading;
  gg_last_reading = r;
  if (last.wall > 0 && r.wall - last.wall < GG_CROWD_GAP_NS && r.wall > last.wall) {
    gg_spans[gg_span_next] = (gg_reading_t){r.wall - last.wall, r.idle - last.idle, r.own - last.own};
    gg_span_next = (gg_span_next + 1) % GG_CROWD_SPANS;
    if (gg_nspans < GG_CROWD_SPANS) gg_nspans++;
  }
  if (gg_nspans < GG_CROWD_SPANS) return -1;
  double wall = 0, idle = 0, own = 0;
  for (int i = 0; i < GG_CROWD_SPANS; i++) wall += gg_spans[i].wall, idle += gg_spans[i].idle, own += gg_spans[i].own;
  double others = ((double)cpus * wall - idle - own) / wall;
  return (double)cpus - (others > 0 ? others : 0);
}

#endif
