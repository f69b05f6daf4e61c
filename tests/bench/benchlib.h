/* SPDX-License-Identifier: Apache-2.0 */
/* Timing helpers for the benchmarks: run a body repeatedly for a while, report a rate. */
#ifndef KQ_BENCHLIB_H
#define KQ_BENCHLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds each measurement runs; KQ_BENCH_SECONDS overrides (e.g. 0.2 for a smoke run). */
static inline double bench_seconds(void)
{
	const char *s = getenv("KQ_BENCH_SECONDS");
	double v = s ? strtod(s, NULL) : 0;

	return v > 0 ? v : 1.5;
}

/* Runs body (a statement using no state) in batches until bench_seconds(); sets *rate in ops/s. */
#define BENCH_RATE(rate, batch, body)                                  \
	do {                                                           \
		double t0_ = bench_now(), t_;                          \
		unsigned long n_ = 0;                                  \
		do {                                                   \
			for (int i_ = 0; i_ < (batch); i_++) {         \
				body;                                  \
			}                                              \
			n_ += (batch);                                 \
		} while ((t_ = bench_now() - t0_) < bench_seconds());  \
		*(rate) = (double)n_ / t_;                             \
	} while (0)

#endif
