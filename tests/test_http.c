/* test_http.c: the shared HTTP/1.1 layer (harness/http/): request framing at every read
 * boundary, pipelining, the error statuses, and the response writer's format. */
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "task.h"

/* Four pipelined requests: Content-Length and chunked bodies, keep-alive by default and by
 * version. */
static const char PIPELINE[] =
    "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    "GET /b HTTP/1.1\r\nConnection: close\r\n\r\n"
    "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    "GET /d HTTP/1.0\r\n\r\n";
static const char EXPECTED[] = "POST /a 5 1|GET /b 0 0|POST /c 5 1|GET /d 0 0|";

/* Feed `text` in reads that end at the given offsets; append each request parsed. */
static int parse_in_reads(const char *text, const size_t *ends, int nends, char *got,
                          size_t cap) {
  uint8_t buf[2048];
  http_req_t r;
  http_req_init(&r, buf, sizeof buf, 1024, 4096);
  size_t fed = 0;
  got[0] = 0;
  for (int i = 0; i < nends; i++) {
    while (fed < ends[i]) { /* a read takes what fits in the buffer */
      size_t room, n = ends[i] - fed;
      uint8_t *space = http_req_space(&r, &room);
      if (n > room) n = room;
      memcpy(space, text + fed, n);
      fed += n;
      http_req_status_t st = http_req_parse(&r, n);
      while (st == HTTP_REQ_DONE) {
        char one[96];
        snprintf(one, sizeof one, "%s %s %zu %d|", r.method, r.url, r.body_bytes, r.keep_alive);
        strncat(got, one, cap - strlen(got) - 1);
        http_req_next(&r);
        st = http_req_parse(&r, 0);
      }
      if (st == HTTP_REQ_ERROR) return r.error_status;
    }
  }
  return http_req_pending(&r) ? -1 : 0;
}

TEST_IMPL(http_requests_split_at_every_byte) {
  size_t total = strlen(PIPELINE);
  char got[512];
  for (size_t split = 1; split < total; split++) {
    size_t ends[2] = {split, total};
    ASSERT_EQ(parse_in_reads(PIPELINE, ends, 2, got, sizeof got), 0);
    if (strcmp(got, EXPECTED) != 0) FAIL_MSG("split at %zu: %s", split, got);
  }
  size_t ends[sizeof PIPELINE];
  for (size_t i = 0; i < total; i++) ends[i] = i + 1;
  ASSERT_EQ(parse_in_reads(PIPELINE, ends, (int)total, got, sizeof got), 0);
  ASSERT_STR_EQ(got, EXPECTED);
  return 0;
}

static int status_of(const char *text) {
  size_t ends[1] = {strlen(text)};
  char got[256];
  return parse_in_reads(text, ends, 1, got, sizeof got);
}

TEST_IMPL(http_bad_requests_get_their_status) {
  ASSERT_EQ(status_of("GET /x HTTP/1.1\r\nHost churn\r\n\r\n"), 400);
  ASSERT_EQ(status_of("G@T /x HTTP/1.1\r\n\r\n"), 400);
  ASSERT_EQ(status_of("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), 400);
  ASSERT_EQ(status_of("GET /x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"), 400);
  ASSERT_EQ(status_of("POST /x HTTP/1.1\r\nContent-Length: 4097\r\n\r\n"), 413);
  char big[1200];
  int n = snprintf(big, sizeof big, "GET /x HTTP/1.1\r\nX-Pad: ");
  memset(big + n, 'p', sizeof big - (size_t)n - 5);
  memcpy(big + sizeof big - 5, "\r\n\r\n", 5);
  ASSERT_EQ(status_of(big), 431);
  /* A chunked body over the limit, in small chunks. */
  char chunked[8192];
  n = snprintf(chunked, sizeof chunked, "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (int i = 0; i < 40; i++) n += snprintf(chunked + n, sizeof chunked - (size_t)n, "80\r\n%0128d\r\n", 0);
  ASSERT_EQ(status_of(chunked), 413);
  /* Half a request is pending, not an error. */
  ASSERT_EQ(status_of("GET /x HTTP/1.1\r\nHost:"), -1);
  return 0;
}

TEST_IMPL(http_response_format_and_echo) {
  uint8_t buf[256];
  http_req_t r;
  http_req_init(&r, buf, sizeof buf, 256, 256);
  const char *req = "POST /big/1 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
  size_t room;
  memcpy(http_req_space(&r, &room), req, strlen(req));
  ASSERT_EQ(http_req_parse(&r, strlen(req)), HTTP_REQ_DONE);
  char body[HTTP_BODY_MAX];
  size_t blen = http_echo_body(&r, body, sizeof body);
  ASSERT_EQ(blen, HTTP_BIG_BODY);
  char line[64];
  snprintf(line, sizeof line, "/big/1 POST 2 %08x\n",
           (unsigned)http_body_sum(HTTP_BODY_SUM_INIT, "hi", 2));
  ASSERT_TRUE(strncmp(body, line, strlen(line)) == 0);
  char resp[128];
  size_t n = http_response_format(resp, sizeof resp, 400, false, "Bad Request", 11);
  ASSERT_STR_EQ(resp, "HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request");
  ASSERT_EQ(n, strlen(resp));
  return 0;
}
