#pragma once
// SG_EMU_ASAN: 1 when AddressSanitizer instruments this translation unit (clang says so through
// __has_feature, GCC through __SANITIZE_ADDRESS__); the emulator then poisons device red zones and
// annotates its fiber switches.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SG_EMU_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(SG_EMU_ASAN)
#define SG_EMU_ASAN 1
#endif
#ifndef SG_EMU_ASAN
#define SG_EMU_ASAN 0
#endif
