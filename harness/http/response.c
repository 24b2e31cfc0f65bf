/* response.c: what the server copies answer and how they send it.
 *
 * Every copy answers a request the same way, with the echo body, so the churn client can check
 * each response against the request it sent without knowing which server it talks to: the
 * first line names the URL, the method, the body length and the body checksum. */
#include <stdio.h>
#include <string.h>

#include "http.h"

const char *http_status_text(int status) {
  switch (status) {
  case 200: return "OK";
  case 400: return "Bad Request";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Unknown";
  }
}

size_t http_response_format(char *out, size_t cap, int status, bool keep_alive, const char *body,
                            size_t body_len) {
  int n = snprintf(out, cap, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                   status, http_status_text(status), body_len, keep_alive ? "keep-alive" : "close");
  if (n < 0 || (size_t)n >= cap) return 0;
  size_t room = cap - (size_t)n;
  if (body_len > room) body_len = room;
  memcpy(out + n, body, body_len);
  return (size_t)n + body_len;
}

size_t http_echo_body(const http_req_t *r, char *out, size_t cap) {
  int n = snprintf(out, cap, "%s %s %zu %08x\n", r->url, r->method, r->body_bytes,
                   (unsigned)r->body_sum);
  if (n < 0) return 0;
  size_t len = (size_t)n < cap ? (size_t)n : cap - 1;
  if (strncmp(r->url, "/big/", 5) == 0 && cap > HTTP_BIG_BODY) {
    memset(out + len, '.', HTTP_BIG_BODY - 1 - len);
    out[HTTP_BIG_BODY - 1] = '\n';
    len = HTTP_BIG_BODY;
  }
  return len;
}

ssize_t http_out_send(ks_kernel_t *k, int fd, http_out_t *o, int flags) {
  ssize_t n = ks_send(k, fd, o->data + o->off, o->len - o->off, flags | MSG_NOSIGNAL);
  if (n > 0) o->off += (size_t)n;
  return n;
}
