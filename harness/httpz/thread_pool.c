/* thread_pool.c: http.zig's thread pool (src/thread_pool.zig @8dc6441) running processData.
 *
 * The loop thread collects jobs in a local batch and, at the end of each loop iteration (or
 * when the batch is full), pushes the whole batch into one thread's ring queue, round-robin,
 * under that thread's mutex. A thread whose queue is empty takes a job from its peer's queue
 * before it waits. */
#include <string.h>

#include "httpz.h"

static void tp_push(tp_worker_t *t, const httpz_job_t *jobs, size_t n) {
  const size_t queue_end = TP_QUEUE_LEN - 1;
  while (n > 0) {
    cf_mutex_lock(&t->mutex);
    size_t capacity;
    for (;;) {
      capacity = t->head < t->tail ? t->tail - t->head - 1 : queue_end - t->head + t->tail;
      if (capacity > 0) break;
      cf_cond_wait(&t->write_cond, &t->mutex);
    }
    size_t ready = capacity >= n ? n : capacity;
    for (size_t i = 0; i < ready; i++) {
      t->queue[t->head] = jobs[i];
      t->head = t->head == queue_end ? 0 : t->head + 1;
    }
    cf_mutex_unlock(&t->mutex);
    cf_cond_signal(&t->read_cond);
    jobs += ready;
    n -= ready;
  }
}

/* getNext: a job, or false when stopped (or, without block, when the queue is empty). */
static bool tp_getNext(tp_worker_t *t, bool block, httpz_job_t *job) {
  const size_t queue_end = TP_QUEUE_LEN - 1;
  cf_mutex_lock(&t->mutex);
  while (t->tail == t->head) {
    if (!block || t->stopped) {
      cf_mutex_unlock(&t->mutex);
      return false;
    }
    cf_mutex_unlock(&t->mutex);
    if (t->peer != t && tp_getNext(t->peer, false, job)) return true;
    cf_mutex_lock(&t->mutex);
    if (t->tail == t->head)
      cf_cond_wait_idle(&t->read_cond, &t->mutex);
    else
      break;
  }
  *job = t->queue[t->tail];
  t->tail = t->tail == queue_end ? 0 : t->tail + 1;
  cf_mutex_unlock(&t->mutex);
  cf_cond_signal(&t->write_cond);
  return true;
}

static void tp_run(void *arg) {
  tp_worker_t *t = arg;
  httpz_job_t job;
  while (tp_getNext(t, true, &job)) httpz_processData(job.worker, job.now, job.conn);
}

void httpz_thread_pool_init(Worker *w, int count) {
  ThreadPool *tp = &w->thread_pool;
  if (count < 1) count = 1;
  if (count > TP_MAX_THREADS) count = TP_MAX_THREADS;
  tp->nworkers = count;
  for (int i = 0; i < count; i++) {
    tp_worker_t *t = &tp->workers[i];
    t->peer = &tp->workers[(i + 1) % count];
    cf_mutex_init(&t->mutex, "thread_pool.mutex");
    cf_cond_init(&t->read_cond, "thread_pool.read_cond");
    cf_cond_init(&t->write_cond, "thread_pool.write_cond");
  }
  for (int i = 0; i < count; i++) cf_thread_spawn(&tp->workers[i].thread, tp_run, &tp->workers[i], "pool");
}

void httpz_thread_pool_spawn(Worker *w, httpz_job_t job) {
  ThreadPool *tp = &w->thread_pool;
  tp->batch[tp->batch_size++] = job;
  if (tp->batch_size == TP_BATCH_SIZE) httpz_thread_pool_flush(w, TP_BATCH_SIZE);
}

void httpz_thread_pool_flush(Worker *w, size_t batch_size) {
  ThreadPool *tp = &w->thread_pool;
  tp->batch_size = 0;
  tp->worker_index += 1;
  tp_push(&tp->workers[tp->worker_index % (unsigned)tp->nworkers], tp->batch, batch_size);
}

void httpz_thread_pool_stop(Worker *w) {
  ThreadPool *tp = &w->thread_pool;
  for (int i = 0; i < tp->nworkers; i++) {
    tp_worker_t *t = &tp->workers[i];
    cf_mutex_lock(&t->mutex);
    t->stopped = true;
    cf_mutex_unlock(&t->mutex);
    cf_cond_broadcast(&t->read_cond);
    cf_thread_join(&t->thread);
  }
}
