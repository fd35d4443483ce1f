#pragma once
// Data types of the emulated cuBLAS (the subset slidegrade uses), with CUDA's names.
enum cudaDataType_t : int {
  CUDA_R_32F = 0,
  CUDA_R_16F = 2,
  CUDA_R_16BF = 14,
};
