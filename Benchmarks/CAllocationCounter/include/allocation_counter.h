// Counts calls to malloc, calloc, realloc and posix_memalign in this process, for
// allocations-per-request figures. Linked into the benchmark executable only.
#ifndef ALLOCATION_COUNTER_H
#define ALLOCATION_COUNTER_H
#include <stdint.h>
uint64_t allocation_counter_value(void);
#endif
