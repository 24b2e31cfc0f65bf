/* poll_vs_linux_ops.c: poll(2) in the differential test (test_epoll_vs_linux.c). A random
 * array goes to both kernels with timeout 0, and the return value, errno and every revents
 * must match. The arrays mix open descriptors of every kind with numbers poll must skip
 * (negative), report POLLNVAL for (not open, O_PATH) or see twice (duplicates, with different
 * events), so the masks of memfds (Linux's DEFAULT_POLLMASK) and of epoll files (readable while
 * an item on the ready list is really ready, which polling prunes) are compared too. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "epoll_vs_linux.h"

#define MAX_ENTRIES 8

static const short poll_bits[] = {POLLIN,     POLLPRI,    POLLOUT,    POLLRDHUP,
                                  POLLRDNORM, POLLWRNORM, POLLRDBAND, POLLWRBAND};
#define NBITS (int)(sizeof poll_bits / sizeof poll_bits[0])

static short all_bits(void) {
  short ev = 0;
  for (int i = 0; i < NBITS; i++) ev |= poll_bits[i];
  return ev;
}

static short random_poll_events(world_t *w) {
  if (chance(w, 8)) return 0; /* only POLLERR and POLLHUP can be reported */
  if (chance(w, 10)) return all_bits();
  short ev = 0;
  for (int i = 0; i < NBITS; i++)
    if (chance(w, i < 3 ? 45 : 20)) ev |= poll_bits[i]; /* IN, PRI, OUT more often */
  return ev;
}

/* A number for entry n of the array: mostly open descriptors, epolls and O_PATH ones on
 * purpose, repeats of earlier entries, and numbers that are skipped or not open. */
static int pick_poll_fd(world_t *w, const struct pollfd *fds, int n) {
  uint32_t p = below(w, 100);
  int fd = -1;
  if (p < 8) return chance(w, 75) ? -1 : -2 - (int)below(w, 1000); /* skipped */
  if (p < 16) {
    switch (below(w, 3)) {
    case 0: return 300;
    case 1: return 100000; /* above the simulated table, and any rlimit here */
    default: fd = diff_pick_free(w); return fd >= 0 ? fd : 300;
    }
  }
  if (p < 26 && n > 0) return fds[below(w, (uint32_t)n)].fd;
  if (p < 32) fd = diff_pick_open(w, K_PATH);
  else if (p < 42) fd = diff_pick_open(w, K_EPOLL);
  else if (p < 48) fd = diff_pick_open(w, K_REG);
  if (fd < 0) fd = diff_pick_open(w, -1);
  return fd >= 0 ? fd : diff_pick_free(w);
}

/* Apply one array to both kernels (timeout 0) and compare everything. revents start as
 * garbage: the call must overwrite every one, skipped entries included. */
static int compare_poll(world_t *w, const char *what, struct pollfd *rf, int n) {
  struct pollfd sf[KS_NFD + 1];
  for (int i = 0; i < n; i++) rf[i].revents = (short)next64(w);
  memcpy(sf, rf, (size_t)n * sizeof *rf);
  int r = poll(rf, (nfds_t)n, 0), e = errno;
  int s = ks_poll(w->k, sf, (nfds_t)n, 0);
  if (diff_same(w, what, r, e, s)) return 1;
  diff_stats.polls++;
  if (r > 0) {
    diff_stats.polls_with_events++;
    diff_stats.poll_ready += r;
  }
  for (int i = 0; i < n; i++) {
    diff_note(w, "      {%d, %#x} -> %#x | %#x\n", rf[i].fd, (unsigned short)rf[i].events,
              (unsigned short)rf[i].revents, (unsigned short)sf[i].revents);
    if (rf[i].revents != sf[i].revents)
      return diff_diverged(w, "%s: revents of entry %d (fd %d) differ", what, i, rf[i].fd);
  }
  return 0;
}

int diff_op_poll(world_t *w) {
  struct pollfd fds[MAX_ENTRIES];
  int n = 1 + (int)below(w, MAX_ENTRIES);
  for (int i = 0; i < n; i++) {
    fds[i].fd = pick_poll_fd(w, fds, i);
    fds[i].events = random_poll_events(w);
  }
  char what[64];
  snprintf(what, sizeof what, "poll(%d entries, 0)", n);
  return compare_poll(w, what, fds, n);
}

int diff_probe_poll(world_t *w) {
  struct pollfd fds[KS_NFD + 1];
  int n = 0;
  for (int fd = 0; fd < KS_NFD; fd++)
    if (w->kind[fd] != K_NONE) fds[n++] = (struct pollfd){.fd = fd, .events = all_bits()};
  fds[n++] = (struct pollfd){.fd = 300, .events = POLLIN};
  return compare_poll(w, "probe poll", fds, n);
}
