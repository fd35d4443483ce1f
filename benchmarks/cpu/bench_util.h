#pragma once
// Shared by the benchmark programs: random inputs (never zeros: they can run faster than
// real data) and throughput counters.
#include <benchmark/benchmark.h>

#include <random>

#include "core/tensor.h"

namespace sg::bench {

inline Tensor random_tensor(Shape shape, DType dtype, Device device = Device::cpu(), float lo = -1, float hi = 1) {
  std::mt19937 engine(12345);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(size_t(shape.numel()));
  for (float& v : values) v = dist(engine);
  Tensor host = Tensor::from_floats(values, std::move(shape), dtype);
  return device.is_cpu() ? host : host.to(device);
}

// Bytes that must cross memory per iteration -> bytes_per_second (Google Benchmark's GB/s).
inline void set_bytes(benchmark::State& state, size_t bytes) {
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes));
}

// Floating-point operations per iteration -> FLOP/s counter.
inline void set_flops(benchmark::State& state, double flops) {
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace sg::bench
