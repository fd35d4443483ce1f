#pragma once
// SG_HD marks functions compiled for both the host and the device, so the CPU reference and
// the CUDA kernels share one definition of every scalar formula.
#if defined(__CUDACC__)
#define SG_HD __host__ __device__
#define SG_HD_INLINE __host__ __device__ __forceinline__
#else
#define SG_HD
#define SG_HD_INLINE inline
#endif
