// SPDX-License-Identifier: GPL-2.0
/*
 * Not a BPF program: compiled by scripts/build.ts with the programs' flags, for the BTF of the
 * kernel/user boundary, from which it generates lib/events/kinds/kernel-layout.generated.ts.
 */
#include "esr.h"

struct esr_boundary esr_boundary;
