/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KQ_FUZZ_H
#define KQ_FUZZ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif
