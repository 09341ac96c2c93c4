/*
 * pool_crowd_x86.h: how many of the CPUs this process may run on are free of other processes (and of the host, in a
 * virtual machine), for the thread pool's choice between its threads and the caller alone (native/pool_x86.c,
 * "Crowded cores"). Included by pool_x86.c only; its caller holds the pool's lock.
 *
 * What the CPUs' idle time (/proc/stat, in clock ticks of 10 ms) and the process's own CPU time do not account for,
 * over the last GG_CROWD_READS readings, is other processes' use of those CPUs. Linux only: elsewhere no figure.
 */
#ifndef GG_POOL_CROWD_X86_H
#define GG_POOL_CROWD_X86_H

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GG_CROWD_READS 4 /* readings the other processes' share is taken over (ticks of 10 ms: 200 ms at least) */

/* Readings of the CPUs' idle time (/proc/stat) and the process's CPU time, the oldest first. */
typedef struct {
  double wall, idle, own; /* ns */
} gg_reading_t;
static gg_reading_t gg_readings[GG_CROWD_READS + 1];
static int gg_nreadings;

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
  /* "cpu  ..." (all), then "cpuN user nice system idle iowait ..." in clock ticks, before any other line */
  for (char *line = buf; line && strncmp(line, "cpu", 3) == 0; line = strchr(line, '\n'), line = line ? line + 1 : 0) {
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

/* The readings so far forgotten: the next figure comes GG_CROWD_READS readings on. */
static void gg_cpus_forget(void) { gg_nreadings = 0; }

/* Reads now: the CPUs free of other processes over the last readings; -1 until there are enough (or unreadable). */
static double gg_cpus_free(double now) {
  gg_reading_t r;
  int cpus = gg_read_cpus(&r, now);
  if (!cpus) return -1;
  if (gg_nreadings == GG_CROWD_READS + 1) {
    memmove(gg_readings, gg_readings + 1, GG_CROWD_READS * sizeof *gg_readings);
    gg_nreadings--;
  }
  gg_readings[gg_nreadings++] = r;
  if (gg_nreadings < GG_CROWD_READS + 1) return -1;
  const gg_reading_t *o = &gg_readings[0];
  double wall = r.wall - o->wall;
  if (wall <= 0) return -1;
  double others = ((double)cpus * wall - (r.idle - o->idle) - (r.own - o->own)) / wall;
  return (double)cpus - (others > 0 ? others : 0);
}

#endif
