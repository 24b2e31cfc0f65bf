/* sites.c: failure sites of fuzz_epoll_shim's differential and liveness oracles whose labels
 * carry what differed, so that the signature (oracle@site) tells bugs apart: a return value is
 * named with both answers by class, a pwait difference with the side that is wrong as far as
 * the oracle can tell. */
#include <stdio.h>

#include "world.h"

static void ret_class(long ret, char *buf, size_t len) {
  static const struct { int e; const char *name; } names[] = {
      {EBADF, "EBADF"}, {EINVAL, "EINVAL"}, {EEXIST, "EEXIST"}, {ENOENT, "ENOENT"},
      {EPERM, "EPERM"}, {EAGAIN, "EAGAIN"}, {EPIPE, "EPIPE"}, {ENOTTY, "ENOTTY"},
      {EMFILE, "EMFILE"}, {EFAULT, "EFAULT"}, {ELOOP, "ELOOP"}, {ENOMEM, "ENOMEM"}};
  if (ret > 0) {
    snprintf(buf, len, "n");
    return;
  }
  if (ret == 0) {
    snprintf(buf, len, "0");
    return;
  }
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (-ret == names[i].e) {
      snprintf(buf, len, "%s", names[i].name);
      return;
    }
  snprintf(buf, len, "E%ld", -ret);
}

/* A failure site whose label is built at run time (the label is the signature's second half).
 * Sites are kept for the process, one per distinct label. */
static const cf_site_t *named_site(const char *label) {
  static struct { char label[80]; cf_site_t site; } table[48];
  static int n;
  for (int i = 0; i < n; i++)
    if (!strcmp(table[i].label, label)) return &table[i].site;
  if (n == (int)(sizeof table / sizeof *table)) return CF_SITE("diff.(too many kinds)");
  snprintf(table[n].label, sizeof table[n].label, "%s", label);
  table[n].site = (cf_site_t){table[n].label, __FILE__, __LINE__, 0};
  return &table[n++].site;
}


/* The failure site of a pwait comparison: `base` plus which side is wrong as far as the oracle
 * can tell (see oracle_compare_events). */
const cf_site_t *events_site(const char *base, const char *what) {
  char label[80];
  snprintf(label, sizeof label, "%s %s", base, what);
  return named_site(label);
}

/* The signature names the syscall whose result differed and the two answers, by class (an
 * errno's name, 0, or "n" for a count or a descriptor): two bugs that make one call fail
 * differently sign differently. */
static const char *diff_call(op_kind_t kind) {
  switch (kind) {
  case OP_CLOSE: return "diff.close";
  case OP_DUP: case OP_DUP2: case OP_DUP3: return "diff.dup";
  case OP_WRITE: case OP_READ: return "diff.read_write";
  case OP_CTL: return "diff.epoll_ctl";
  case OP_PWAIT: return "diff.epoll_pwait";
  case OP_IOCTL: return "diff.ioctl";
  default: return "diff.open";
  }
}

const cf_site_t *diff_site(op_kind_t kind, long shim, long ref) {
  char a[16], b[16], label[80];
  ret_class(shim, a, sizeof a);
  ret_class(ref, b, sizeof b);
  snprintf(label, sizeof label, "%s %s, Linux %s", diff_call(kind), a, b);
  return named_site(label);
}

