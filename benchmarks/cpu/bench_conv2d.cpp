// CPU conv2d on EfficientNet-B0 layer shapes at 224 px: forward, backward_input,
// backward_weight, as FLOP/s (2 * N * Ho * Wo * Cout * kh * kw * Cin/groups per direction),
// plus every convolution of B0 forward and backward in one run.
#include <benchmark/benchmark.h>

#include <vector>

#include "benchmarks/cpu/bench_util.h"
#include "kernels/conv2d.h"

namespace sg {
namespace {

struct Layer {
  const char* name;
  int64_t size, c_in, c_out, kernel, stride;
  bool depthwise;
};

// Single layers named in the plan (input size, channels, kernel, stride).
const Layer kLayers[] = {
    {"stem 3x3/2 3->32 @224", 224, 3, 32, 3, 2, false},
    {"dw 3x3/2 96 @112", 112, 96, 96, 3, 2, true},
    {"dw 5x5/1 240 @28", 28, 240, 240, 5, 1, true},
    {"pw 24->144 @56", 56, 24, 144, 1, 1, false},
    {"pw 480->80 @14", 14, 480, 80, 1, 1, false},
    {"pw 320->1280 @7", 7, 320, 1280, 1, 1, false},
};

// Tensors and geometry of one layer at batch n.
struct Problem {
  Conv2dParams p;
  Conv2dShape s;
  Tensor x, w, y, dy, dx, dw;
  Problem(const Layer& l, int64_t n, DType dtype) {
    p = make_conv2d_params(l.kernel, l.kernel, l.stride, Padding::tf_same, l.size, l.size,
                           l.depthwise ? l.c_in : 1);
    s = conv2d_shape("bench", p, Shape{n, l.size, l.size, l.c_in}, Shape{l.c_out, l.kernel, l.kernel, l.c_in / p.groups});
    x = bench::random_tensor({n, l.size, l.size, l.c_in}, dtype);
    w = bench::random_tensor({l.c_out, l.kernel, l.kernel, l.c_in / p.groups}, dtype, Device::cpu(), -0.1f, 0.1f);
    y = Tensor::empty({n, s.out_h, s.out_w, s.c_out}, dtype);
    dy = bench::random_tensor(y.shape(), dtype);
    dx = Tensor::empty(x.shape(), dtype);
    dw = Tensor::empty(w.shape(), dtype);
  }
  double flops() const {
    return 2.0 * double(s.n * s.out_h * s.out_w * s.c_out) * double(p.kernel_h * p.kernel_w * (s.c_in / p.groups));
  }
};

enum Direction { kForward, kBackwardInput, kBackwardWeight };

void BM_Conv2d(benchmark::State& state) {
  const Layer& layer = kLayers[state.range(0)];
  const auto direction = Direction(state.range(1));
  const int64_t n = state.range(2);
  const auto dtype = DType(state.range(3));
  Problem pr(layer, n, dtype);
  for (auto _ : state) {
    switch (direction) {
      case kForward: conv2d_forward(pr.p, pr.x, pr.w, nullptr, pr.y); break;
      case kBackwardInput: conv2d_backward_input(pr.p, pr.dy, pr.w, pr.dx); break;
      case kBackwardWeight: conv2d_backward_weight(pr.p, pr.x, pr.dy, pr.dw, nullptr); break;
    }
  }
  const char* names[] = {"fwd", "bwd_input", "bwd_weight"};
  state.SetLabel(std::string(layer.name) + " " + names[direction] + " N=" + std::to_string(n) + " " +
                 std::string(dtype_name(dtype)));
  bench::set_flops(state, pr.flops());
}

void conv2d_args(benchmark::internal::Benchmark* b) {
  for (int64_t layer = 0; layer < int64_t(std::size(kLayers)); ++layer)
    for (int64_t direction : {kForward, kBackwardInput, kBackwardWeight}) {
      for (int64_t n : {1, 2}) b->Args({layer, direction, n, int64_t(DType::f32)});
      b->Args({layer, direction, 1, int64_t(DType::f16)});
    }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_Conv2d)->Apply(conv2d_args);

// Every convolution of EfficientNet-B0 at 224 px (SE 1x1s on 1x1 maps left out): for each MBConv
// block the expansion 1x1 (not in stage 1), the depthwise kxk and the projection 1x1; then the
// 1x1 head. Forward, backward_input (not for the stem: the image needs no gradient) and
// backward_weight of each: the convolution share of one training step.
std::vector<Layer> efficientnet_b0_convs() {
  struct Stage {
    int64_t expand, kernel, stride, c_out, repeats;
  };
  const Stage stages[] = {{1, 3, 1, 16, 1},  {6, 3, 2, 24, 2},  {6, 5, 2, 40, 2},  {6, 3, 2, 80, 3},
                          {6, 5, 1, 112, 3}, {6, 5, 2, 192, 4}, {6, 3, 1, 320, 1}};
  std::vector<Layer> layers{{"stem", 224, 3, 32, 3, 2, false}};
  int64_t size = 112, c = 32;
  for (const Stage& st : stages)
    for (int64_t r = 0; r < st.repeats; ++r) {
      const int64_t stride = r == 0 ? st.stride : 1, mid = c * st.expand;
      if (st.expand != 1) layers.push_back({"expand", size, c, mid, 1, 1, false});
      layers.push_back({"dw", size, mid, mid, st.kernel, stride, true});
      size = (size + stride - 1) / stride;
      layers.push_back({"project", size, mid, st.c_out, 1, 1, false});
      c = st.c_out;
    }
  layers.push_back({"head", size, c, 1280, 1, 1, false});
  return layers;
}

void BM_EfficientNetB0AllConvs(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto dtype = DType(state.range(1));
  std::vector<Problem> problems;
  double flops = 0;
  for (const Layer& l : efficientnet_b0_convs()) {
    problems.emplace_back(l, n, dtype);
    flops += (l.c_in == 3 ? 2 : 3) * problems.back().flops();
  }
  for (auto _ : state)
    for (Problem& pr : problems) {
      conv2d_forward(pr.p, pr.x, pr.w, nullptr, pr.y);
      if (pr.s.c_in != 3) conv2d_backward_input(pr.p, pr.dy, pr.w, pr.dx);
      conv2d_backward_weight(pr.p, pr.x, pr.dy, pr.dw, nullptr);
    }
  state.SetLabel("B0 @224 all convs fwd+bwd N=" + std::to_string(n) + " " + std::string(dtype_name(dtype)) + ", " +
                 std::to_string(problems.size()) + " convs");
  bench::set_flops(state, flops);
}

BENCHMARK(BM_EfficientNetB0AllConvs)
    ->Args({1, int64_t(DType::f32)})
    ->Args({2, int64_t(DType::f32)})
    ->Args({8, int64_t(DType::f32)})
    ->Args({2, int64_t(DType::f16)})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace sg
