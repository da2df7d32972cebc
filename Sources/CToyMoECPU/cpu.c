// CPUID/XGETBV feature checks; see include/CToyMoECPU.h for why this file has no ISA flags.
#include "CToyMoECPU.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <string.h>

// XCR0 via the xgetbv instruction, written as raw bytes so the file needs no -mxsave. Only executed after CPUID
// reported OSXSAVE, i.e. the instruction exists and the OS enabled it.
static unsigned long long read_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static int bit(unsigned int reg, int n) { return (reg >> n) & 1; }

int toymoe_cpu_supports_x86_64_v3(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    // leaf 1 ECX: FMA 12, MOVBE 22, OSXSAVE 27, AVX 28, F16C 29
    if (!(bit(ecx, 12) && bit(ecx, 22) && bit(ecx, 27) && bit(ecx, 28) && bit(ecx, 29))) return 0;
    // The OS must save XMM (bit 1) and YMM (bit 2) state, or AVX instructions fault.
    if ((read_xcr0() & 0x6) != 0x6) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    // leaf 7 EBX: BMI1 3, AVX2 5, BMI2 8
    if (!(bit(ebx, 3) && bit(ebx, 5) && bit(ebx, 8))) return 0;
    // leaf 0x80000001 ECX: LZCNT (ABM) 5
    if (!__get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx)) return 0;
    return bit(ecx, 5);
}

int toymoe_cpu_supports_x86_64_v4(void) {
    if (!toymoe_cpu_supports_x86_64_v3()) return 0;
    unsigned int eax, ebx, ecx, edx;
    // XCR0 bits 5-7: opmask, upper halves of ZMM0-15, ZMM16-31.
    if ((read_xcr0() & 0xe0) != 0xe0) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    // leaf 7 EBX: AVX512F 16, AVX512DQ 17, AVX512CD 28, AVX512BW 30, AVX512VL 31
    return bit(ebx, 16) && bit(ebx, 17) && bit(ebx, 28) && bit(ebx, 30) && bit(ebx, 31);
}

const char *toymoe_cpu_brand(void) {
    static char brand[49];
    unsigned int regs[12];
    unsigned int max_ext = __get_cpuid_max(0x80000000, 0);
    if (max_ext < 0x80000004) return "";
    for (unsigned int i = 0; i < 3; i++) {
        __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    }
    memcpy(brand, regs, 48);
    brand[48] = 0;
    // Trim the leading spaces some vendors pad with.
    const char *p = brand;
    while (*p == ' ') p++;
    return p;
}

#else

int toymoe_cpu_supports_x86_64_v3(void) { return 0; }
int toymoe_cpu_supports_x86_64_v4(void) { return 0; }
const char *toymoe_cpu_brand(void) { return ""; }

#endif
