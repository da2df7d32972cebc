// Run-time CPU feature detection for choosing a kernel set.
//
// This target is compiled without any ISA flags on purpose: it runs before we know what the CPU supports, so it
// must itself be baseline code (measured: a whole module built with wide instructions can die before its first
// check runs). The Swift kernel modules built for x86-64-v3 / x86-64-v4 are only called when these functions say so.
#ifndef CTOYMOECPU_H
#define CTOYMOECPU_H

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the CPU and the operating system support every feature of the x86-64-v3 level that the AVX2 kernel
/// module may use (AVX, AVX2, FMA, F16C, BMI1, BMI2, LZCNT, MOVBE, and YMM state enabled in XCR0); else 0.
/// Always 0 on non-x86 machines.
int toymoe_cpu_supports_x86_64_v3(void);

/// 1 when the CPU and OS support the x86-64-v4 level (v3 plus AVX-512 F, BW, CD, DQ, VL, and opmask/ZMM state
/// enabled in XCR0); else 0. Always 0 on non-x86 machines.
int toymoe_cpu_supports_x86_64_v4(void);

/// The CPU's brand string (e.g. "AMD EPYC 7B13"), or "" when unknown. Static storage; do not free.
const char *toymoe_cpu_brand(void);

#ifdef __cplusplus
}
#endif

#endif
