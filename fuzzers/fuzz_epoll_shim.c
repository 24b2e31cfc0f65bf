/* fuzz_epoll_shim: elfuse's epoll-on-kqueue emulation (harness/epoll_shim/) under random guest
 * syscalls from up to three guest threads. Every call is compared with a Linux reference
 * kernel, the shim's tables and the host's knotes are checked for the spec's invariants, and
 * liveness is checked at quiescence. The workload format is in harness/epoll_shim/workload.c;
 * toggles: the epoll-* lines of harness/runtime/bugs.def. */
#include "run.h"
#include "shim.h"

void epoll_shim_main(void *arg);

const cf_target_t fuzz_epoll_shim_target = {
    .name = "fuzz_epoll_shim",
    .system = SHIM_SYSTEM,
    .main = epoll_shim_main,
};

CF_FUZZ_TARGET(fuzz_epoll_shim_target)
