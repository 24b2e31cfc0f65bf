/* testutil.h: helpers shared by the test files. Randomness in tests comes from a fixed-seed
 * splitmix64 generator, never from rand() or the clock. */
#ifndef CF_TESTUTIL_H
#define CF_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline void fill_random(uint8_t *buf, size_t len, uint64_t seed) {
  uint64_t st = seed * 0x2545f4914f6cdd1dull + 1;
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)splitmix64(&st);
}

#endif
