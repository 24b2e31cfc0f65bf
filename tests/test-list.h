/* test-list.h: the registry of unit tests and self-tests, one list file per area.
 * Each list file holds TEST_ENTRY(name) lines for tests defined with TEST_IMPL(name). */
#include "list-runtime.h"
#include "list-kernel.h"
#include "list-tls-intern.h"
#include "list-epoll-shim.h"
#include "list-http.h"
#include "list-btc-http.h"
