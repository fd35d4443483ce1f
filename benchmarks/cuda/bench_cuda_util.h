#pragma once
// CUDA benchmark helpers: each iteration is timed with events on one stream (manual time),
// after a write that flushes the GPU's L2 so inputs come from device memory as in a real
// network. Report bytes with bench::set_bytes and FLOPs with bench::set_flops.
#include <benchmark/benchmark.h>

#include <functional>

#include "benchmarks/cpu/bench_util.h"
#include "core/stream.h"
#include "core/tensor.h"

namespace sg::bench {

class GpuTimer {
 public:
  GpuTimer() : start_(Device::cuda(0)), end_(Device::cuda(0)), flush_(Tensor::empty({int64_t(128) << 20}, DType::u8, Device::cuda(0))) {}

  // Runs fn once per iteration between events; the L2 flush happens outside the timed region.
  void run(benchmark::State& state, const std::function<void()>& fn) {
    fn();  // warm-up: module load, first-touch
    Stream default_stream;
    for (auto _ : state) {
      flush_.zero_();
      start_.record(default_stream);
      fn();
      end_.record(default_stream);
      end_.synchronize();
      state.SetIterationTime(double(Event::elapsed_ms(start_, end_)) / 1e3);
    }
  }

 private:
  Event start_, end_;
  Tensor flush_;
};

// Skips the benchmark with a visible message when there is no GPU.
inline bool skip_without_gpu(benchmark::State& state) {
  if (cuda_available()) return false;
  state.SkipWithError(("no CUDA device: " + cuda_unavailable_reason()).c_str());
  return true;
}

}  // namespace sg::bench
