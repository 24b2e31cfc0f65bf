/* toys.h: small models with known races behind toggles, so the whole pipeline (build, fuzz,
 * crash, minimise, replay) can be tested on bugs whose answer we know. Each toy is written
 * against the platform API only, so it runs on fibers and on real threads alike. */
#ifndef CF_TOYS_H
#define CF_TOYS_H

#include <stdint.h>

#define TOY_SYSTEM "sim-selftest"

/* toy-lost-update: `workers` threads each add 1 to a shared counter `increments` times.
 * Returns the final counter (workers * increments unless an update was lost). */
uint64_t toy_counter_race(int workers, int increments);

/* toy-lock-order: two threads each take mutexes a and b; with the toggle the second takes them
 * in the opposite order, so some schedules deadlock. */
void toy_lock_order(void);

/* toy-lost-wakeup: a producer hands `messages` items to a consumer thread through a flag and a
 * condition variable; each item is an obligation the consumer must close. */
void toy_lost_wakeup(int messages);

/* toy-refcount-uaf: an owner drops its reference while a reader looks the object up in a
 * shared slot; with the toggle the reader increments a refcount that already reached zero and
 * then reads freed memory. */
void toy_refcount_race(int readers);

/* The fuzz target's main: decodes which toy and its parameters from the workload stream. */
void toy_selftest_main(void *arg);

/* The bug-depth ladder (depth_ladder.c): two workers whose failure needs d preemptions at
 * exact points, d set by the toy-depth-d toggle; fuzz_depth_ladder's main. No workload. */
#define TOY_LADDER_SYSTEM "depth-ladder"
void toy_depth_ladder_main(void *arg);

#endif
