/* task.h: assertion macros and the test declaration macro for the unit-test binary.
 *
 * A test is `TEST_IMPL(name) { ...; return 0; }`, registered by one line in a list file
 * (list-*.h). Assertions print both operands and fail the test by returning 1; they are never
 * compiled out. Tests run in-process, in registry order, under simulated time only. */
#ifndef CF_TASK_H
#define CF_TASK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define TEST_IMPL(name) int test_##name(void)

#define CF_TEST_FAIL_(fmt, ...)                                                      \
  do {                                                                               \
    fprintf(stderr, "  assertion failed at %s:%d: " fmt "\n", __FILE__, __LINE__,    \
            __VA_ARGS__);                                                            \
    return 1;                                                                        \
  } while (0)

#define ASSERT_EQ(a, b)                                                              \
  do {                                                                               \
    long long a_ = (long long)(a), b_ = (long long)(b);                              \
    if (a_ != b_) CF_TEST_FAIL_("%s == %s (%lld vs %lld)", #a, #b, a_, b_);          \
  } while (0)
#define ASSERT_NE(a, b)                                                              \
  do {                                                                               \
    long long a_ = (long long)(a), b_ = (long long)(b);                              \
    if (a_ == b_) CF_TEST_FAIL_("%s != %s (both %lld)", #a, #b, a_);                 \
  } while (0)
#define ASSERT_U64_EQ(a, b)                                                          \
  do {                                                                               \
    uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                 \
    if (a_ != b_)                                                                    \
      CF_TEST_FAIL_("%s == %s (0x%" PRIx64 " vs 0x%" PRIx64 ")", #a, #b, a_, b_);    \
  } while (0)
#define ASSERT_TRUE(c)                                                               \
  do {                                                                               \
    if (!(c)) CF_TEST_FAIL_("%s", #c);                                               \
  } while (0)
#define ASSERT_FALSE(c)                                                              \
  do {                                                                               \
    if (c) CF_TEST_FAIL_("!(%s)", #c);                                               \
  } while (0)
#define ASSERT_STR_EQ(a, b)                                                          \
  do {                                                                               \
    const char *a_ = (a), *b_ = (b);                                                 \
    if (strcmp(a_, b_) != 0) CF_TEST_FAIL_("%s == %s (\"%s\" vs \"%s\")", #a, #b, a_, b_); \
  } while (0)
/* Fail with a message built by the test itself (for differential mismatches). */
#define FAIL_MSG(...)                                                                \
  do {                                                                               \
    fprintf(stderr, "  failed at %s:%d: ", __FILE__, __LINE__);                      \
    fprintf(stderr, __VA_ARGS__);                                                    \
    fprintf(stderr, "\n");                                                           \
    return 1;                                                                        \
  } while (0)

#endif
