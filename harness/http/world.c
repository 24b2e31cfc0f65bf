/* world.c: what every HTTP target's simulated run sets up before its server: a kernel that
 * lives until the end of the run, and the listening socket the server is handed. */
#include "http.h"

static void kernel_free(void *k) { ks_kernel_free(k); }

ks_kernel_t *http_world_kernel(const ks_config_t *cfg, uint16_t port, const char *system,
                               int *listener) {
  ks_kernel_t *k = ks_kernel_new(cfg);
  cf_defer(kernel_free, k);
  int fd = ks_socket(k, AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || ks_bind(k, fd, port) < 0 || ks_listen(k, fd, 16) < 0)
    cf_fail("harness", system, CF_SITE("world.listen"), "cannot listen");
  *listener = fd;
  return k;
}

void http_world_faults(bool on, bool epoll_nomem) {
  if (!on) return;
  cf_fault_enable(CF_FAULT_EAGAIN, true);
  cf_fault_enable(CF_FAULT_SHORT_WRITE, true);
  if (epoll_nomem) cf_fault_enable(CF_FAULT_EPOLL_NOMEM, true);
}
