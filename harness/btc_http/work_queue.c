/* work_queue.c: the request dispatcher and its workers (bitcoin/bitcoin src/httpserver.cpp
 * WorkQueue<HTTPClosure>, HTTPWorkQueueRun; spec §2.3 "Worker threads").
 *
 * The I/O thread's m_request_dispatcher enqueues the request; a full queue answers 503 ("Work
 * queue depth exceeded") at once, on the I/O thread. Each worker takes the oldest request and
 * runs the handler, which replies through WriteReply on the worker's thread. Run() returns
 * only when interrupted and the queue is empty, so stopping drains every queued request.
 * How bitcoind wires the new server to its pool is not confirmed upstream (spec §4.2): this is
 * the libevent server's WorkQueue, which the new server's dispatcher keeps using. */
#include <string.h>

#include "btc_http.h"

/* The request handler (an RPC method's stand-in): the echo every copy answers with. */
static void handle_request(HTTPRequest *req) {
  char body[HTTP_BODY_MAX];
  size_t n = http_echo_body(&req->parsed, body, sizeof body);
  HTTPRequest_WriteReply(req, 200, body, n);
}

/* WorkQueue::Run */
static void HTTPWorkQueueRun(void *arg) {
  HTTPServer *s = arg;
  WorkQueue *q = &s->work_queue;
  for (;;) {
    cf_mutex_lock(&q->cs);
    while (q->running && !q->head) cf_cond_wait_idle(&q->cond, &q->cs);
    if (!q->running && !q->head) {
      cf_mutex_unlock(&q->cs);
      break;
    }
    HTTPRequest *req = q->head;
    q->head = req->next;
    if (!q->head) q->tail = NULL;
    q->size--;
    cf_mutex_unlock(&q->cs);
    handle_request(req);
    btc_request_free(req); /* the work item goes, and with it the client reference */
  }
}

void btc_work_queue_start(HTTPServer *s, int depth, int threads) {
  WorkQueue *q = &s->work_queue;
  cf_mutex_init(&q->cs, "WorkQueue.cs");
  cf_cond_init(&q->cond, "WorkQueue.cond");
  q->maxDepth = (size_t)(depth < 1 ? 1 : depth);
  q->running = true;
  q->nthreads = threads < 1 ? 1 : threads > BTC_MAX_WORKERS ? BTC_MAX_WORKERS : threads;
  for (int i = 0; i < q->nthreads; i++)
    cf_thread_spawn(&q->threads[i], HTTPWorkQueueRun, s, "httpworker");
}

/* WorkQueue::Enqueue */
static bool enqueue(WorkQueue *q, HTTPRequest *req) {
  cf_mutex_lock(&q->cs);
  if (!q->running || q->size >= q->maxDepth) {
    cf_mutex_unlock(&q->cs);
    return false;
  }
  req->next = NULL;
  if (q->tail)
    q->tail->next = req;
  else
    q->head = req;
  q->tail = req;
  q->size++;
  cf_cond_signal(&q->cond);
  cf_mutex_unlock(&q->cs);
  return true;
}

void btc_request_dispatcher(HTTPServer *s, HTTPRequest *req) {
  cf_atomic_fetch_add(&s->requests, 1);
  if (enqueue(&s->work_queue, req)) return;
  static const char msg[] = "Work queue depth exceeded";
  HTTPRequest_WriteReply(req, 503, msg, sizeof msg - 1);
  btc_request_free(req);
}

void btc_work_queue_stop(HTTPServer *s) {
  WorkQueue *q = &s->work_queue;
  cf_mutex_lock(&q->cs);
  q->running = false;
  cf_cond_broadcast(&q->cond);
  cf_mutex_unlock(&q->cs);
  for (int i = 0; i < q->nthreads; i++) cf_thread_join(&q->threads[i]);
  cf_cond_destroy(&q->cond);
  cf_mutex_destroy(&q->cs);
}
