/* parser.c: request framing for the server copies, on nodejs' http-parser.
 *
 * http_parser_execute is fed the buffered bytes and paused at the end of each request, so bytes
 * that follow (a pipelined request) stay in the buffer, unparsed, until the copy has answered
 * the first one and calls http_req_next(). It is also paused at the end of the head, so the
 * head limit counts head bytes only: while the head is incomplete at most the bytes that fit
 * in the limit (plus one, to notice overflow) are fed at once. A read may end anywhere, so
 * every callback appends (the URL can arrive in pieces). */
#include <stdio.h>
#include <string.h>

#include "http.h"

static http_req_t *req_of(http_parser *p) { return (http_req_t *)p->data; }

static int on_message_begin(http_parser *p) {
  http_req_t *r = req_of(p);
  r->url_len = 0;
  r->url[0] = 0;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  http_req_t *r = req_of(p);
  size_t room = sizeof r->url - 1 - r->url_len;
  if (n > room) n = room; /* a longer URL is kept truncated: the echo names what fits */
  memcpy(r->url + r->url_len, at, n);
  r->url_len += n;
  r->url[r->url_len] = 0;
  return 0;
}

static int on_headers_complete(http_parser *p) {
  http_req_t *r = req_of(p);
  r->in_body = true;
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > r->max_body) r->error_status = 413;
  if (p->upgrade) r->error_status = 400; /* no protocol upgrades or CONNECT tunnels here */
  http_parser_pause(p, 1);
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  http_req_t *r = req_of(p);
  r->body_bytes += n;
  r->body_sum = http_body_sum(r->body_sum, at, n);
  if (r->body_bytes > r->max_body) {
    r->error_status = 413;
    http_parser_pause(p, 1);
  }
  return 0;
}

static int on_message_complete(http_parser *p) {
  http_req_t *r = req_of(p);
  r->complete = true;
  r->keep_alive = http_should_keep_alive(p) != 0;
  r->http10 = p->http_major == 1 && p->http_minor == 0;
  snprintf(r->method, sizeof r->method, "%s", http_method_str((enum http_method)p->method));
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void start_message(http_req_t *r) {
  http_parser_init(&r->parser, HTTP_REQUEST);
  r->parser.data = r;
  r->head_bytes = r->body_bytes = 0;
  r->in_body = r->complete = false;
  r->error_status = 0;
  r->body_sum = HTTP_BODY_SUM_INIT;
  r->url_len = 0;
  r->url[0] = 0;
  r->method[0] = 0;
}

void http_req_init(http_req_t *r, uint8_t *buf, size_t cap, size_t max_head, size_t max_body) {
  memset(r, 0, sizeof *r);
  r->buf = buf;
  r->cap = cap;
  r->max_head = max_head;
  r->max_body = max_body;
  start_message(r);
}

uint8_t *http_req_space(http_req_t *r, size_t *room) {
  *room = r->cap - r->len;
  return r->buf + r->len;
}

void http_req_received(http_req_t *r, size_t n) { r->len += n; }

/* Drop the first n buffered bytes (they were parsed). */
static void consume(http_req_t *r, size_t n) {
  memmove(r->buf, r->buf + n, r->len - n);
  r->len -= n;
}

static http_req_status_t fail(http_req_t *r, int status) {
  r->error_status = status;
  return HTTP_REQ_ERROR;
}

http_req_status_t http_req_parse(http_req_t *r, size_t n) {
  r->len += n;
  size_t off = 0;
  http_req_status_t st = HTTP_REQ_MORE;
  while (!r->complete && off < r->len) {
    size_t chunk = r->len - off;
    if (!r->in_body && chunk > r->max_head - r->head_bytes + 1)
      chunk = r->max_head - r->head_bytes + 1;
    size_t used = http_parser_execute(&r->parser, &settings, (const char *)r->buf + off, chunk);
    off += used;
    if (!r->in_body) r->head_bytes += used;
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    if (r->error_status) {
      st = fail(r, r->error_status);
      break;
    }
    if (e == HPE_PAUSED) {
      http_parser_pause(&r->parser, 0);
      continue;
    }
    if (e != HPE_OK) {
      st = fail(r, 400);
      break;
    }
    if (!r->in_body && r->head_bytes > r->max_head) {
      st = fail(r, 431);
      break;
    }
  }
  consume(r, off);
  if (st == HTTP_REQ_ERROR) return st;
  if (r->complete) return HTTP_REQ_DONE;
  /* A full buffer with the head still incomplete can only grow past the limit. */
  if (!r->in_body && r->len == r->cap) return fail(r, 431);
  return HTTP_REQ_MORE;
}

bool http_req_pending(const http_req_t *r) {
  return r->len > 0 || r->head_bytes > 0 || r->in_body;
}

void http_req_next(http_req_t *r) { start_message(r); }
