/* workload.c: the fuzz target's workload: up to three guest threads issuing random guest
 * syscalls against the shim, each checked by the oracles (oracle.c, checks.c).
 *
 * Workload byte format (front of the input, docs/INPUT_FORMAT.md), decoded before any thread
 * runs: up to MAX_OPS records, each an op byte then its operand bytes.
 *   op byte: bits 0-5 opcode (mod OP_COUNT), bits 6-7 guest thread (3 reads as 0).
 *   opcode  name          operands (each one byte)
 *    0      eventfd       flags: bit 0 EFD_CLOEXEC (always EFD_NONBLOCK, initval 0)
 *    1      pipe2         flags: bit 0 O_CLOEXEC, bit 1 blocking (default O_NONBLOCK)
 *    2      socketpair    flags: as pipe2 (AF_UNIX stream)
 *    3      open O_PATH   flags: bit 0 O_CLOEXEC
 *    4      open regular  flags: bit 0 O_CLOEXEC
 *    5      epoll_create1 flags: bit 0 EPOLL_CLOEXEC
 *    6      close         fd
 *    7      dup           fd
 *    8      dup2          fd, newfd
 *    9      dup3          fd, newfd, flags: bit 0 O_CLOEXEC
 *   10      write         fd, v: writes the 8 bytes of the uint64 v + 1
 *   11      read          fd (8 bytes)
 *   12      epoll_ctl     epfd, op (mod 4: ADD, DEL, MOD, an invalid op), fd, events:
 *                         bit 0 EPOLLIN, 1 EPOLLOUT, 2 EPOLLRDHUP, 3 EPOLLET, 4 EPOLLONESHOT
 *   13      epoll_pwait   epfd, timeout (mod 3: 0, 5 ticks, forever); maxevents 64
 *   14      clone         -   starts the next guest thread (1, then 2) running its ops
 *   15      exit          -   ends the calling thread's ops
 *   16      ioctl         fd, request (mod 3: FIONBIO, FIOCLEX, FIONCLEX), arg (bit 0)
 * Every fd operand is taken mod 16, so numbers are reused as lowest-free allocation hands
 * them out again. Thread 0 is the main fiber; a thread's ops run only once a clone started
 * it. The events a ctl asks for are trimmed to the directions the file at that number can
 * carry on the host (a program knows what it opened): read-only ends and eventfds get no
 * EPOLLOUT, write ends no EPOLLIN, EPOLLRDHUP comes only with EPOLLIN, and at least one
 * direction is always asked for. ctl data is (ctl serial << 6) | fd. */
#include <stddef.h>

#include "world.h"
#include "tolerated.h"

static const uint8_t operand_count[OP_COUNT] = {
    [OP_EVENTFD] = 1, [OP_PIPE] = 1,  [OP_SOCKETPAIR] = 1, [OP_OPEN_PATH] = 1,
    [OP_OPEN_REGULAR] = 1, [OP_EPOLL_CREATE] = 1, [OP_CLOSE] = 1, [OP_DUP] = 1,
    [OP_DUP2] = 2,    [OP_DUP3] = 3,  [OP_WRITE] = 2,      [OP_READ] = 1,
    [OP_CTL] = 4,     [OP_PWAIT] = 2, [OP_CLONE] = 0,      [OP_EXIT] = 0,
    [OP_IOCTL] = 3};

#define FD_OPERAND(b) ((int)((b) % 16))

static void decode(world_t *w) {
  while (w->nops < MAX_OPS && cf_workload_left()) {
    uint32_t b = cf_workload_byte();
    op_t *op = &w->ops[w->nops++];
    uint32_t v[4] = {0, 0, 0, 0};
    op->kind = (op_kind_t)((b & 63) % OP_COUNT);
    op->thread = (int)((b >> 6) % SHIM_MAX_THREADS);
    for (int i = 0; i < operand_count[op->kind]; i++) v[i] = cf_workload_byte();
    op->a = (int)v[0];
    switch (op->kind) {
    case OP_CLOSE: case OP_DUP: case OP_READ:
      op->a = FD_OPERAND(v[0]);
      break;
    case OP_DUP2: case OP_DUP3:
      op->a = FD_OPERAND(v[0]);
      op->b = FD_OPERAND(v[1]);
      op->c = (int)v[2];
      break;
    case OP_WRITE:
      op->a = FD_OPERAND(v[0]);
      op->b = (int)v[1];
      break;
    case OP_CTL:
      op->a = FD_OPERAND(v[0]);
      op->b = (int)(v[1] % 4) == 3 ? 7 : (int)(v[1] % 4) + 1; /* ADD 1, DEL 2, MOD 3, bad 7 */
      op->c = FD_OPERAND(v[2]);
      op->ev_bits = (uint8_t)v[3];
      break;
    case OP_PWAIT:
      op->a = FD_OPERAND(v[0]);
      op->b = (int)(v[1] % 3);
      break;
    case OP_IOCTL:
      op->a = FD_OPERAND(v[0]);
      op->b = (int)(v[1] % 3);
      op->c = (int)(v[2] & 1);
      break;
    default:
      break;
    }
  }
}

/* The directions the file at fd can carry on the host, read the way a program consults its
 * own bookkeeping (no yield, not a syscall). */
static uint32_t events_for(world_t *w, int fd, uint8_t bits) {
  uint32_t ev = 0;
  if (bits & 1) ev |= EPOLLIN;
  if (bits & 2) ev |= EPOLLOUT;
  if ((bits & 4) && (bits & 1)) ev |= EPOLLRDHUP;
  cf_oracle_begin();
  const fd_entry_t *e = &w->shim.fd_table[fd];
  bool rd = true, wr = true;
  if (e->type == FD_EVENTFD) wr = false;
  if (e->type == FD_PIPE) {
    int fl = ks_fcntl(w->host, e->host_fd, F_GETFL, 0);
    bool read_end = fl >= 0 && (fl & O_ACCMODE) == O_RDONLY;
    rd = read_end;
    wr = !read_end;
  }
  cf_oracle_end();
  if (!rd) ev &= ~(EPOLLIN | EPOLLRDHUP);
  if (!wr) ev &= ~EPOLLOUT;
  if (!(ev & (EPOLLIN | EPOLLOUT))) ev |= rd ? EPOLLIN : EPOLLOUT;
  if (bits & 8) ev |= EPOLLET;
  if (bits & 16) ev |= EPOLLONESHOT;
  return ev;
}

static void run_script(world_t *w, guest_thread_t *t);

static void guest_thread_main(void *arg) {
  guest_thread_t *t = arg;
  world_t *w = (world_t *)t->shim;
  run_script(w, t);
}

static long clone_thread(world_t *w) {
  cf_oracle_begin(); /* harness bookkeeping shared by the threads */
  int id = w->next_thread < SHIM_MAX_THREADS ? w->next_thread++ : -1;
  cf_oracle_end();
  if (id < 0) return -EAGAIN;
  guest_thread_started(&w->shim); /* the parent's clone counts the child before it runs */
  cf_oracle_begin();
  w->started[id] = true;
  cf_oracle_end();
  cf_thread_spawn(&w->threads[id].thread, guest_thread_main, &w->threads[id], "guest");
  return id;
}

const char *op_name(op_kind_t kind) {
  static const char *const names[OP_COUNT] = {
      "eventfd", "pipe2", "socketpair", "open_path", "open", "epoll_create1", "close", "dup",
      "dup2", "dup3", "write", "read", "epoll_ctl", "epoll_pwait", "clone", "exit", "ioctl"};
  return names[kind];
}

static const int64_t pwait_timeouts[3] = {0, 5, -1};

int64_t pwait_timeout(int selector) { return pwait_timeouts[selector % 3]; }
static const unsigned long ioctl_requests[3] = {LINUX_FIONBIO, LINUX_FIOCLEX, LINUX_FIONCLEX};

static long do_op(world_t *w, guest_thread_t *t, op_rec_t *r, linux_epoll_event_t *out) {
  shim_t *s = &w->shim;
  const op_t *op = r->op;
  int cloexec = op->a & 1, blocking = op->a & 2;
  switch (op->kind) {
  case OP_EVENTFD:
    return sys_eventfd2(s, t, 0, EFD_NONBLOCK | (cloexec ? EFD_CLOEXEC : 0));
  case OP_PIPE:
    return sys_pipe2(s, t, r->fds, (blocking ? 0 : O_NONBLOCK) | (cloexec ? O_CLOEXEC : 0));
  case OP_SOCKETPAIR:
    return sys_socketpair(s, t, r->fds,
                          (blocking ? 0 : SOCK_NONBLOCK) | (cloexec ? SOCK_CLOEXEC : 0));
  case OP_OPEN_PATH:
    return sys_open_path(s, t, cloexec ? O_CLOEXEC : 0);
  case OP_OPEN_REGULAR:
    return sys_open_regular(s, t, cloexec ? O_CLOEXEC : 0);
  case OP_EPOLL_CREATE:
    return sys_epoll_create1(s, t, cloexec ? EPOLL_CLOEXEC : 0);
  case OP_CLOSE:
    return sys_close(s, t, op->a);
  case OP_DUP:
    return sys_dup(s, t, op->a);
  case OP_DUP2:
    return sys_dup3(s, t, op->a, op->b, 0, true);
  case OP_DUP3:
    return sys_dup3(s, t, op->a, op->b, (op->c & 1) ? LINUX_O_CLOEXEC : 0, false);
  case OP_WRITE: {
    uint64_t v = (uint64_t)op->b + 1;
    memcpy(r->wbuf, &v, sizeof v);
    return sys_write(s, t, op->a, r->wbuf, sizeof r->wbuf);
  }
  case OP_READ:
    return sys_read(s, t, op->a, r->rbuf, sizeof r->rbuf);
  case OP_CTL:
    r->ev.events = events_for(w, op->c, op->ev_bits);
    cf_oracle_begin(); /* a harness counter shared by the threads, not the program's memory */
    r->ev.data = (w->ctl_serial++ << 6) | (uint64_t)op->c;
    cf_oracle_end();
    return sys_epoll_ctl(s, t, op->a, op->b, op->c, &r->ev);
  case OP_PWAIT:
    r->out = out;
    r->started_at = cf_now();
    return sys_epoll_pwait(s, t, op->a, out, MAX_EVENTS, pwait_timeouts[op->b]);
  case OP_CLONE:
    return clone_thread(w);
  case OP_IOCTL:
    return sys_ioctl(s, t, op->a, ioctl_requests[op->b], op->c);
  default:
    return 0;
  }
}

static void run_op(world_t *w, guest_thread_t *t, const op_t *op) {
  op_rec_t *r = &w->recs[t->id];
  linux_epoll_event_t out[MAX_EVENTS];
  /* Everything up to the reference's event buffer, which pwait fills before reading. */
  memset(r, 0, offsetof(op_rec_t, ref_events));
  r->op = op;
  r->pin_fd = r->pin_epfd = r->pin_old = -1;
  r->fds[0] = r->fds[1] = r->ref_fds[0] = r->ref_fds[1] = -1;
  cf_oracle_begin(); /* the oracle's per-thread bookkeeping, read by the other threads' checks */
  t->op = r;
  t->in_syscall = true;
  cf_oracle_end();
  r->ret = do_op(w, t, r, out);
  cf_oracle_begin();
  t->in_syscall = false;
  cf_oracle_end();
  if ((op->kind == OP_PIPE || op->kind == OP_SOCKETPAIR) && r->ret == 0)
    cf_note(CF_SITE("guest.syscall"), "T%d %s(%d) = 0 [%d, %d]", t->id, op_name(op->kind), op->a,
            r->fds[0], r->fds[1]);
  else if (op->kind == OP_CTL)
    cf_note(CF_SITE("guest.syscall"), "T%d epoll_ctl(%d, %d, %d, {0x%x, 0x%llx}) = %ld", t->id,
            op->a, op->b, op->c, r->ev.events, (unsigned long long)r->ev.data, r->ret);
  else
    cf_note(CF_SITE("guest.syscall"), "T%d %s(%d, %d, %d) = %ld", t->id, op_name(op->kind),
            op->a, op->b, op->c, r->ret);
  if (op->kind == OP_CLONE) {
    r->applied = true; /* nothing to compare: Linux threads do not touch the fd table */
    r->ref_ret = r->ret;
  }
  oracle_op_done(w, t);
  /* Reads, writes, creations and ioctls cannot change registrations or knotes. */
  bool may_change = op->kind == OP_CTL || op->kind == OP_PWAIT || op->kind == OP_CLOSE ||
                    op->kind == OP_DUP2 || op->kind == OP_DUP3;
  /* A DEL that returned 0 with its number left alone since its commit point can be checked
   * on the spot, whoever else is inside a syscall. */
  if (op->kind == OP_CTL && op->b == EPOLL_CTL_DEL && r->ret == 0 && r->undisturbed)
    check_del_left_no_knote(w, op->c);
  if (may_change && world_quiet(w, t)) {
    check_structure(w);
    if (op->kind == OP_CLOSE && r->ret == 0) check_close_hygiene(w, op->a, r);
  }
  cf_oracle_begin();
  t->op = NULL;
  cf_oracle_end();
}

static void run_script(world_t *w, guest_thread_t *t) {
  for (int i = 0; i < w->nops; i++) {
    const op_t *op = &w->ops[i];
    if (op->thread != t->id) continue;
    if (op->kind == OP_EXIT) break;
    run_op(w, t, op);
  }
  guest_thread_exited(&w->shim);
}

static void world_free(void *arg) {
  world_t *w = arg;
  ks_kernel_free(w->host);
  ks_kernel_free(w->lin);
}

void epoll_shim_main(void *arg) {
  (void)arg;
  world_t *w = cf_sim_alloc(sizeof *w);
  ks_config_t cfg;
  ks_config_default(&cfg);
  cfg.sock_buf_bytes = SOCK_BUF_BYTES;
  w->host = ks_kernel_new(&cfg);
  w->lin = ks_kernel_new(&cfg);
  cf_defer(world_free, w);
  decode(w);
  tolerances_from_env();
  shim_init(&w->shim, w->host);
  w->shim.observer = oracle_observe;
  w->shim.observer_ctx = w;
  for (int i = 0; i < SHIM_MAX_THREADS; i++) {
    w->threads[i].id = i;
    w->threads[i].shim = &w->shim;
  }
  w->next_thread = 1;
  w->started[0] = true;
  cf_on_quiescence(check_liveness_at_quiescence, w);
  run_script(w, &w->threads[0]);
}
