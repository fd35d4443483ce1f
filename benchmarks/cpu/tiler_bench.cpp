// The slide pipeline's per-slide CPU work on in-memory levels: the tiler on a 5000 x 2500 level
// (a PANDA level 1; 36 x 256 px and 64 x 192 px, plain and half-offset grids) and tissue
// detection on a 1250 x 625 level (level 2). Input: white glass with tissue-like strips and
// noise, so the sums and thresholds see realistic data.
#include <benchmark/benchmark.h>

#include <numeric>
#include <opencv2/imgproc.hpp>
#include <random>

#include "data/opencv_view.h"
#include "data/tiler.h"
#include "data/tissue_detection.h"

namespace sg::data {
namespace {

// A level of width x height: glass, three rotated pink strips, noise everywhere.
Image synthetic_level(int width, int height) {
  Image level(width, height, 3, 242);
  cv::Mat mat = as_mat(level);
  const double scale = width / 5000.0;
  for (int i = 0; i < 3; ++i) {
    const cv::RotatedRect strip(cv::Point2f(float(width * (0.25 + 0.25 * i)), float(height * 0.5)),
                                cv::Size2f(float(2000 * scale), float(300 * scale)), float(20 + 50 * i));
    cv::Point2f corners[4];
    strip.points(corners);
    std::vector<cv::Point> polygon(corners, corners + 4);
    cv::fillConvexPoly(mat, polygon, cv::Scalar(215, 140, 185));
  }
  std::mt19937 engine(12345);
  std::uniform_int_distribution<int> noise(-6, 6);
  for (uint8_t& v : level.pixels) v = uint8_t(std::clamp(int(v) + noise(engine), 0, 255));
  return level;
}

// Args: N, S, half offset.
void BM_TileLevel(benchmark::State& state) {
  static const Image level = synthetic_level(5000, 2500);
  const TileSpec spec{.count = int(state.range(0)), .size = int(state.range(1)), .half_offset = state.range(2) != 0};
  for (auto _ : state) {
    TileSet tiles = tile_level(level, spec);
    benchmark::DoNotOptimize(tiles.pixels.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(level.pixels.size()));
  state.counters["slides/s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TileLevel)
    ->Args({36, 256, 0})
    ->Args({36, 256, 1})
    ->Args({64, 192, 0})
    ->Args({64, 192, 1})
    ->Unit(benchmark::kMillisecond);

// Baseline: one read of the whole level (std::accumulate of its bytes), what a pass over it costs
// at best; the tiler reads it once and copies N tiles.
void BM_ReadLevelBaseline(benchmark::State& state) {
  static const Image level = synthetic_level(5000, 2500);
  for (auto _ : state) {
    uint64_t sum = std::accumulate(level.pixels.begin(), level.pixels.end(), uint64_t(0));
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(level.pixels.size()));
}
BENCHMARK(BM_ReadLevelBaseline)->Unit(benchmark::kMillisecond);

void BM_DetectTissue(benchmark::State& state) {
  static const Image level = synthetic_level(1250, 625);
  double fraction = 0;
  for (auto _ : state) {
    const TissueMask mask = detect_tissue(level, 16.0);
    fraction = mask.overall_fraction();
    benchmark::DoNotOptimize(fraction);
  }
  state.counters["tissue"] = fraction;
  state.counters["slides/s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DetectTissue)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sg::data
