// SIGKILL in the middle of writes, for every kind of file slidegrade writes (core/atomic_file.h):
// a child process writes one file over and over, alternating two distinguishable contents, and is
// killed after a random short delay. The file must then be exactly one of the two complete
// versions (compared byte for byte with a reference written beforehand, and parsed by its reader),
// never torn or empty, and a later write must succeed. A writer that wrote the target in place
// fails this test (a kill in the middle of its write leaves a torn file; and half the kills wait
// for the writer's temporary, which such a writer never makes).
//
// Delays are drawn from a seed printed at the start; SG_TEST_SEED=<seed> replays them.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/tensor.h"
#include "data/grades_csv.h"
#include "data/image_io.h"
#include "data/kfold.h"
#include "data/pyramid_tiff_writer.h"
#include "data/slide_reader.h"
#include "data/tile_cache.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"
#include "weights/weight_file.h"

namespace sg {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// One kind of file: how to write version 0 or 1 of it, and how to check (with the file's own
// reader) that a file holds exactly that version.
struct FileKind {
  std::string file_name;
  std::function<void(const fs::path& path, int version)> write;
  std::function<::testing::AssertionResult(const fs::path& path, int version)> holds;
};

// Whether the writer `child` has a temporary of `path` now, i.e. is inside a write.
bool inside_a_write(const fs::path& path, pid_t child) {
  const std::vector<fs::path> left = temporaries_of(path);
  return std::any_of(left.begin(), left.end(), [&](const fs::path& p) { return temporary_writer(p, path) == child; });
}

// Reads one byte: 1, or 0 when the writer ended (the pipe's other end closed).
int read_progress(int fd) {
  char byte = 0;
  for (;;) {
    const ssize_t n = ::read(fd, &byte, 1);
    if (n >= 0 || errno != EINTR) return n == 1 ? 1 : 0;
  }
}

// Kills alternate between two kinds of moment: at random (after the child's first complete
// write, anywhere within the next two writes' time: before, inside, between writes, at a rename),
// and inside a write (as soon as the child's temporary appears, or a little later), so that every
// run tests kills inside writes. The two versions differ everywhere a torn file could show.
void kill_writers_of(const FileKind& kind) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  std::printf("[ seed ] SG_TEST_SEED=%llu\n", static_cast<unsigned long long>(rng.seed()));
  testing::TempDir dir;
  const fs::path path = dir.path() / kind.file_name;

  std::string reference[2];
  for (int version : {0, 1}) {
    const fs::path folder = dir.path() / ("reference-" + std::to_string(version));
    fs::create_directory(folder);
    kind.write(folder / kind.file_name, version);
    reference[version] = read_file(folder / kind.file_name);
    ASSERT_FALSE(reference[version].empty());
    ASSERT_TRUE(kind.holds(folder / kind.file_name, version));
  }
  ASSERT_NE(reference[0], reference[1]);

  kind.write(path, 1);
  const Clock::time_point started = Clock::now();
  kind.write(path, 0);
  const double write_us = std::chrono::duration<double, std::micro>(Clock::now() - started).count();
  int current = 0;

  std::uniform_real_distribution<double> unit(0.0, 1.0);
  constexpr int kKills = 8;
  int kills_inside_a_write = 0, versions_seen[2] = {0, 0};
  for (int kill = 0; kill < kKills; ++kill) {
    int progress[2];  // the child writes a byte after each complete write
    ASSERT_EQ(::pipe(progress), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(progress[0]);
      try {
        for (int version = 1 - current;; version = 1 - version) {
          kind.write(path, version);
          if (::write(progress[1], "w", 1) != 1) break;
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "the writer failed: %s\n", e.what());
      }
      ::_exit(3);
    }
    ::close(progress[1]);
    double delay_us = 0;
    bool writer_alive = true;
    if (kill % 2 == 0) {
      writer_alive = read_progress(progress[0]) == 1;
      delay_us = (double(kill / 2 % 4) + unit(rng.engine())) / 4 * 2 * write_us;
      if (writer_alive) std::this_thread::sleep_for(std::chrono::microseconds(int64_t(delay_us)));
    } else {
      // Busy polling (yielding): a write's temporary may exist for well under a millisecond.
      const Clock::time_point deadline = Clock::now() + std::chrono::seconds(10);
      bool seen = false;
      while (!(seen = inside_a_write(path, child)) && Clock::now() < deadline) std::this_thread::yield();
      ASSERT_TRUE(seen) << "no temporary beside " << path << " in 10 s of writes: the writer does not use one";
      if (kill % 4 == 3) {
        delay_us = unit(rng.engine()) * 0.2 * write_us;
        std::this_thread::sleep_for(std::chrono::microseconds(int64_t(delay_us)));
      }
    }
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ::close(progress[0]);
    ASSERT_TRUE(writer_alive && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the writer ended on its own: " << status;

    const std::string bytes = read_file(path);
    const int version = bytes == reference[0] ? 0 : bytes == reference[1] ? 1 : -1;
    ASSERT_NE(version, -1) << path << " is torn or empty after kill " << kill << " (" << delay_us / 1000 << " ms after "
                           << (kill % 2 == 0 ? "a complete write" : "the temporary appeared") << "): " << bytes.size()
                           << " bytes, a whole file has " << reference[0].size() << " or " << reference[1].size();
    ASSERT_TRUE(kind.holds(path, version)) << "after kill " << kill;
    kills_inside_a_write += inside_a_write(path, child) ? 1 : 0;
    ++versions_seen[version];
    current = version;
  }
  std::printf(
      "[ kill ] %s: %d kills (one write: %.1f ms), %d inside a write (temporary left); found version 0 "
      "%d times, version 1 %d times\n",
      kind.file_name.c_str(), kKills, write_us / 1000, kills_inside_a_write, versions_seen[0], versions_seen[1]);
  EXPECT_GT(kills_inside_a_write, 0) << "no kill landed inside a write: the test proved nothing";

  // The killed writers' temporaries never shadow the file, and are recognised as abandoned.
  remove_abandoned_temporaries(path);
  EXPECT_TRUE(temporaries_of(path).empty());
  // A later write succeeds.
  kind.write(path, 1 - current);
  EXPECT_EQ(read_file(path), reference[1 - current]);
  EXPECT_TRUE(kind.holds(path, 1 - current));
  int files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 3) << "the file and the two reference folders only";
}

// ---- the kinds -----------------------------------------------------------------------------

constexpr int kRows = 6000;  // CSV rows: ~0.2 MB

std::string slide_id(int i) {
  char id[40];
  std::snprintf(id, sizeof id, "%08x%024d", unsigned(i) * 2654435761u, i);
  return id;
}

// The submission: every slide's grade differs between the versions.
FileKind grades_csv() {
  const auto grades = [](int version) {
    std::vector<data::SlideGrade> rows;
    for (int i = 0; i < kRows; ++i) rows.push_back({slide_id(i), (i + version * 3) % 6, 0});
    return rows;
  };
  return {"submission.csv", [=](const fs::path& path, int version) { data::write_grades_csv(path, grades(version)); },
          [=](const fs::path& path, int version) -> ::testing::AssertionResult {
            const std::vector<data::SlideGrade> read = data::read_grades_csv(path);
            const std::vector<data::SlideGrade> expected = grades(version);
            if (read.size() != expected.size()) return ::testing::AssertionFailure() << read.size() << " rows";
            for (size_t i = 0; i < read.size(); ++i)
              if (read[i].image_id != expected[i].image_id || read[i].isup_grade != expected[i].isup_grade)
                return ::testing::AssertionFailure() << "row " << i << " differs";
            return ::testing::AssertionSuccess();
          }};
}

FileKind folds_csv() {
  const auto folds = [](int version) {
    data::Folds f;
    f.k = 5;
    for (int i = 0; i < kRows; ++i) {
      f.image_ids.push_back(slide_id(i));
      f.fold.push_back((i + version * 2) % 5);
    }
    return f;
  };
  return {"folds.csv", [=](const fs::path& path, int version) { data::save_folds(path, folds(version)); },
          [=](const fs::path& path, int version) -> ::testing::AssertionResult {
            const data::Folds read = data::load_folds(path);
            const data::Folds expected = folds(version);
            if (read.k != expected.k || read.image_ids != expected.image_ids || read.fold != expected.fold)
              return ::testing::AssertionFailure() << "the folds differ from version " << version;
            return ::testing::AssertionSuccess();
          }};
}

// Noise, so that the PNG stays large (~0.4 MB).
data::Image noise_image(int version) {
  data::Image image(384, 384, 3);
  uint64_t state = 0x9E3779B97F4A7C15ull * uint64_t(version + 1);
  for (uint8_t& p : image.pixels) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    p = uint8_t(state >> 56);
  }
  return image;
}

FileKind png_image() {
  return {
      "mosaic.png", [](const fs::path& path, int version) { data::write_png(path, noise_image(version)); },
      [](const fs::path& path, int version) -> ::testing::AssertionResult {
        const data::Image read = data::read_png(path);
        if (read.width != 384 || read.height != 384 || read.channels != 3 || read.pixels != noise_image(version).pixels)
          return ::testing::AssertionFailure() << "the pixels differ from version " << version;
        return ::testing::AssertionSuccess();
      }};
}

// A weight file (HDF5; checkpoints go through the same writer): 256 KB of f32.
FileKind weight_file() {
  constexpr int64_t n = 64 * 1024;
  const auto tensor = [](int version) {
    std::vector<float> values(n);
    for (int64_t i = 0; i < n; ++i) values[size_t(i)] = float(i % 1000) + (version == 0 ? 0.25f : 0.75f);
    return Tensor::from_floats(values, {n});
  };
  return {"model.h5",
          [=](const fs::path& path, int version) {
            save_weights(path.string(), {{"w", tensor(version)}}, {"version " + std::to_string(version), {}});
          },
          [=](const fs::path& path, int version) -> ::testing::AssertionResult {
            Tensor w = Tensor::zeros({n}, DType::f32);
            load_weights(path.string(), {{"w", w}});  // verifies the checksum: throws when damaged
            if (w.to_floats() != tensor(version).to_floats())
              return ::testing::AssertionFailure() << "the tensor differs from version " << version;
            if (read_weight_file_info(path.string()).attributes.arch_config != "version " + std::to_string(version))
              return ::testing::AssertionFailure() << "the attributes differ from version " << version;
            return ::testing::AssertionSuccess();
          }};
}

// A pyramid TIFF, lossless (deflate) so that OpenSlide reads back exactly the rendered pixels.
FileKind pyramid_tiff() {
  constexpr int kSide = 512;
  const auto pixel = [](int version, int x, int y, int c) {
    return uint8_t((x * 7 + y * 13 + c * 101 + (x * y) % 17 + version * 128) & 0xff);
  };
  data::PyramidTiffOptions options;
  options.compression = data::PyramidTiffOptions::Compression::deflate;
  options.downsamples = {1};  // no reduced levels: no OpenCV thread pool in the forked writer
  return {"slide.tiff",
          [=](const fs::path& path, int version) {
            data::write_pyramid_tiff(
                path.string(), kSide, kSide, 3,
                [&](int y0, data::Image& band) {
                  for (int y = 0; y < band.height; ++y)
                    for (int x = 0; x < band.width; ++x)
                      for (int c = 0; c < 3; ++c) band.at(x, y)[c] = pixel(version, x, y0 + y, c);
                },
                options);
          },
          [=](const fs::path& path, int version) -> ::testing::AssertionResult {
            const data::Slide slide(path.string());
            const data::Image read = slide.read_region(0, 0, 0, kSide, kSide);
            for (int y = 0; y < kSide; ++y)
              for (int x = 0; x < kSide; ++x)
                for (int c = 0; c < 3; ++c)
                  if (read.at(x, y)[c] != pixel(version, x, y, c))
                    return ::testing::AssertionFailure() << "pixel (" << x << ", " << y << ") differs";
            return ::testing::AssertionSuccess();
          }};
}

// A tile-cache entry (<dir>/<image_id>.tiles): 16 tiles of 96 px, ~0.4 MB.
FileKind tile_cache_entry() {
  const data::TileSpec spec{16, 96, 1, false};
  const auto tiles = [=](int version) {
    data::TileSet set;
    set.spec = spec;
    for (int i = 0; i < spec.count; ++i) set.placements.push_back({i / 4, i % 4, i * 96, version * 1000, uint32_t(i)});
    set.pixels.resize(set.tile_bytes() * size_t(spec.count));
    for (size_t i = 0; i < set.pixels.size(); ++i) set.pixels[i] = uint8_t(i * 31 + size_t(version) * 97);
    return set;
  };
  return {"slide.tiles",
          [=](const fs::path& path, int version) {
            data::TileCache(path.parent_path()).store("slide", "key", tiles(version));
          },
          [=](const fs::path& path, int version) -> ::testing::AssertionResult {
            data::TileCache cache(path.parent_path());
            const std::optional<data::TileSet> read = cache.load("slide", spec, "key");
            if (!read)
              return ::testing::AssertionFailure() << "no intact entry (" << cache.stats().corrupt << " corrupt)";
            const data::TileSet expected = tiles(version);
            if (read->placements != expected.placements || read->pixels != expected.pixels)
              return ::testing::AssertionFailure() << "the tiles differ from version " << version;
            return ::testing::AssertionSuccess();
          }};
}

TEST(AtomicFileKill, GradesCsv) { kill_writers_of(grades_csv()); }
TEST(AtomicFileKill, FoldsCsv) { kill_writers_of(folds_csv()); }
TEST(AtomicFileKill, PngImage) { kill_writers_of(png_image()); }
TEST(AtomicFileKill, WeightFile) { kill_writers_of(weight_file()); }
TEST(AtomicFileKill, PyramidTiff) { kill_writers_of(pyramid_tiff()); }
TEST(AtomicFileKill, TileCacheEntry) { kill_writers_of(tile_cache_entry()); }

}  // namespace
}  // namespace sg
