// Checksummed weight and checkpoint files (weights/checksummed_hdf5.h): a written checkpoint
// verifies and loads; any flipped byte or a truncation is refused with a message naming the file;
// files without the header (Keras, h5py, older slidegrade) still load; HDF5 itself opens our
// files; a full disk or a SIGKILL during a write leaves the previous file loadable.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

#include "core/atomic_file.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"
#include "weights/atomic_hdf5_write.h"
#include "weights/checkpoint_file.h"
#include "weights/checksummed_hdf5.h"
#include "weights/hdf5_file.h"
#include "weights/hdf5_tensor.h"
#include "weights/weight_file.h"

namespace sg {
namespace {

namespace fs = std::filesystem;

const std::string kAdvice =
    "the file was changed or damaged after it was written; use the previous checkpoint or download it again";

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32), bit by bit: an independent check of the header.
uint32_t reference_crc32(const char* data, size_t size) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= static_cast<unsigned char>(data[i]);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint64_t little_endian(const std::vector<char>& bytes, size_t at, size_t count) {
  uint64_t value = 0;
  for (size_t i = 0; i < count; ++i) value |= uint64_t(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
  return value;
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

struct Checkpoint {
  std::vector<NamedTensor> model;
  TrainingCheckpoint state;
};

// A small model with AdamW state: a few tens of KB on disk.
Checkpoint small_checkpoint(testing::Rng& rng) {
  Checkpoint c;
  c.model = {{"stem.conv.weight", testing::random_tensor(rng, {16, 3, 3, 8})},
             {"stem.bn.bias", testing::random_tensor(rng, {16})},
             {"head.fc.weight", testing::random_tensor(rng, {6, 256}, DType::f16)}};
  c.state.optimizer.kind = "adamw";
  c.state.optimizer.scalars = {{"lr", 3e-4}, {"step", 17}};
  for (const NamedTensor& t : c.model)
    c.state.optimizer.slots[t.name] = {{"exp_avg", testing::random_tensor(rng, t.tensor.shape())},
                                       {"exp_avg_sq", testing::random_tensor(rng, t.tensor.shape())}};
  c.state.scheduler = {"cosine", {{"base_lr", 1e-3}}};
  c.state.progress.step = 17;
  c.state.progress.epoch = 2;
  return c;
}

std::vector<NamedTensor> empty_like(const std::vector<NamedTensor>& model) {
  std::vector<NamedTensor> out;
  for (const NamedTensor& t : model) out.push_back({t.name, Tensor::zeros(t.tensor.shape(), t.tensor.dtype())});
  return out;
}

TEST(ChecksummedFile, WrittenCheckpointHasAVerifiedHeaderAndLoads) {
  testing::Rng rng;
  testing::TempDir dir;
  const std::string path = dir.file("last.h5");
  const Checkpoint c = small_checkpoint(rng);
  save_checkpoint(path, c.model, {"arch=test", {}}, c.state);

  const std::vector<char> bytes = read_bytes(path);
  ASSERT_GT(bytes.size(), 1024u);
  EXPECT_EQ(std::string(bytes.data(), 16), std::string("SLIDEGRADE-H5\0\0\0", 16));
  EXPECT_EQ(little_endian(bytes, 16, 4), 1u) << "header version";
  EXPECT_EQ(little_endian(bytes, 20, 4), 512u) << "header size";
  EXPECT_EQ(little_endian(bytes, 24, 8), bytes.size()) << "file length";
  EXPECT_EQ(little_endian(bytes, 32, 4), reference_crc32(bytes.data() + 512, bytes.size() - 512)) << "data CRC-32";
  EXPECT_EQ(little_endian(bytes, 508, 4), reference_crc32(bytes.data(), 508)) << "header CRC-32";
  EXPECT_EQ(std::string(bytes.data() + 512, 4), "\x89HDF") << "the superblock follows the user block";

  const WeightFileInfo info = read_weight_file_info(path);
  EXPECT_TRUE(info.checksum.present);
  EXPECT_EQ(info.checksum.length, bytes.size());
  EXPECT_EQ(info.checksum.data_crc32, little_endian(bytes, 32, 4));
  EXPECT_TRUE(contains(h5::describe(info.checksum), ", verified"));

  const std::vector<NamedTensor> loaded = empty_like(c.model);
  const TrainingCheckpoint state = load_checkpoint(path, loaded);
  for (size_t i = 0; i < loaded.size(); ++i) EXPECT_TRUE(same_bits(loaded[i].tensor, c.model[i].tensor)) << i;
  EXPECT_EQ(state.progress.step, 17);
  EXPECT_TRUE(same_bits(state.optimizer.slots.at("stem.bn.bias").at("exp_avg_sq"),
                        c.state.optimizer.slots.at("stem.bn.bias").at("exp_avg_sq")));
}

// Every 997th byte, the header fields, the superblock and the last bytes: each single flipped byte
// is refused by load_checkpoint, load_weights and Hdf5File with the checksum message, never loaded.
TEST(ChecksummedFile, EveryFlippedByteIsRefusedWithTheChecksumMessage) {
  testing::Rng rng;
  testing::TempDir dir;
  const std::string good = dir.file("good.h5");
  const Checkpoint c = small_checkpoint(rng);
  save_checkpoint(good, c.model, {"arch=test", {}}, c.state);
  const std::vector<char> bytes = read_bytes(good);

  std::vector<size_t> offsets = {0, 5, 13, 15, 16, 20, 24, 31, 32, 35, 64, 100, 507, 508, 511, 512, 513, 520, 540, 600};
  for (size_t at = 997; at < bytes.size(); at += 997) offsets.push_back(at);
  for (size_t back = 1; back <= 8; ++back) offsets.push_back(bytes.size() - back);
  ASSERT_GT(offsets.size(), 40u);

  const std::string bad = dir.file("flipped.h5");
  for (const size_t at : offsets) {
    std::vector<char> flipped = bytes;
    flipped[at] = char(flipped[at] ^ (at % 2 ? 0x01 : 0xff));  // one bit, or the whole byte
    write_bytes(bad, flipped);
    const std::string message = error_of([&] { load_checkpoint(bad, empty_like(c.model)); });
    // Bytes 0-15 are the magic: without it the 512-byte user block is refused as damaged.
    const std::string expected = at < 16 ? "damaged: an HDF5 file with a 512-byte user block but no slidegrade "
                                           "checksum header"
                                         : "checksum mismatch";
    EXPECT_TRUE(contains(message, bad + ": " + expected)) << "byte " << at << ": " << message;
    EXPECT_TRUE(contains(message, kAdvice)) << "byte " << at << ": " << message;
    EXPECT_EQ(error_of([&] { load_weights(bad, empty_like(c.model)); }), message) << "byte " << at;
    EXPECT_EQ(error_of([&] { Hdf5File(bad, Hdf5File::Mode::read); }), message) << "byte " << at;
  }
  // The message gives both checksums.
  std::vector<char> flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;
  write_bytes(bad, flipped);
  const uint32_t stored = uint32_t(little_endian(bytes, 32, 4));
  const uint32_t computed = reference_crc32(flipped.data() + 512, flipped.size() - 512);
  char expected[128];
  std::snprintf(expected, sizeof expected, ": checksum mismatch (stored crc32 0x%08x, computed 0x%08x over bytes 512-%zu)",
                stored, computed, bytes.size() - 1);
  EXPECT_EQ(error_of([&] { load_checkpoint(bad, empty_like(c.model)); }), bad + expected + ": " + kAdvice);
}

// Found by fuzz_weight_file: an image of 513-519 bytes made stamp_checksum_header compare the
// 8-byte HDF5 signature past its end (AddressSanitizer: heap-buffer-overflow in memcmp). Every
// image too short to hold a header and a signature is refused; the buffers are exactly sized, so
// the sanitizer build sees any read past them.
TEST(ChecksummedFile, StampingAnImageTooShortForASuperblockIsRefused) {
  for (size_t size : {size_t(0), size_t(511), size_t(512), size_t(513), size_t(519)}) {
    std::vector<char> image(size, 0);
    if (size > 512) image[512] = char(0x89);  // the signature's first byte, then the end
    try {
      h5::stamp_checksum_header(image, "short.h5");
      ADD_FAILURE() << size << " bytes: no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("short.h5: the HDF5 image has no superblock at byte 512"), std::string::npos)
          << e.what();
    }
  }
}

TEST(ChecksummedFile, TruncatedOrExtendedCopiesAreRefusedByTheLength) {
  testing::Rng rng;
  testing::TempDir dir;
  const std::string good = dir.file("good.h5");
  const Checkpoint c = small_checkpoint(rng);
  save_checkpoint(good, c.model, {}, c.state);
  const std::vector<char> bytes = read_bytes(good);
  const std::string cut = dir.file("cut.h5");
  for (const size_t length : {bytes.size() - 1, bytes.size() / 2, size_t(600), size_t(512)}) {
    write_bytes(cut, std::vector<char>(bytes.begin(), bytes.begin() + std::ptrdiff_t(length)));
    EXPECT_EQ(error_of([&] { load_checkpoint(cut, empty_like(c.model)); }),
              detail::concat(cut, ": truncated: ", length, " bytes on disk, but ", bytes.size(),
                             " were written (an interrupted write, copy or download?); use the previous checkpoint "
                             "or download it again"));
  }
  write_bytes(cut, std::vector<char>(bytes.begin(), bytes.begin() + 300));
  EXPECT_EQ(error_of([&] { load_checkpoint(cut, empty_like(c.model)); }),
            cut + ": truncated: 300 bytes, shorter than its 512-byte checksum header; use the previous checkpoint or "
                  "download it again");
  write_bytes(cut, std::vector<char>(bytes.begin(), bytes.begin() + 10));
  EXPECT_EQ(error_of([&] { load_checkpoint(cut, empty_like(c.model)); }),
            cut + ": not an HDF5 file (no HDF5 signature; empty or truncated?)");

  std::vector<char> longer = bytes;
  longer.push_back('\n');
  write_bytes(cut, longer);
  EXPECT_TRUE(contains(error_of([&] { load_checkpoint(cut, empty_like(c.model)); }),
                       detail::concat(cut, ": ", bytes.size() + 1, " bytes on disk, but ", bytes.size(),
                                      " were written (bytes were appended)")));
}

TEST(ChecksummedFile, AHeaderOfANewerVersionIsNamed) {
  testing::TempDir dir;
  const std::string path = dir.file("w.h5");
  save_weights(path, {{"w", Tensor::from_floats({1, 2}, {2})}}, {});
  std::vector<char> bytes = read_bytes(path);
  bytes[16] = 2;  // version 2, with a header CRC that matches
  const uint32_t crc = reference_crc32(bytes.data(), 508);
  for (int i = 0; i < 4; ++i) bytes[size_t(508 + i)] = char((crc >> (8 * i)) & 0xff);
  write_bytes(path, bytes);
  EXPECT_EQ(error_of([&] { read_weight_file_info(path); }),
            path + ": checksum header version 2 was written by a newer slidegrade (this build reads version 1)");
}

// Files without the header: slidegrade weights written with plain HDF5 calls (as before checksums),
// a Keras-style file, and a plain HDF5 file with an empty 512-byte user block (refused: only a
// damaged slidegrade file looks like that).
TEST(ChecksummedFile, FilesWithoutAHeaderLoadAsBefore) {
  testing::Rng rng;
  testing::TempDir dir;
  const Checkpoint c = small_checkpoint(rng);
  const std::string plain = dir.file("plain.h5");
  {
    Hdf5Handle file(H5Fcreate(plain.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    ASSERT_TRUE(file.valid());
    weights_detail::write_model(file.get(), plain, c.model, {"arch=test", {}});
  }
  EXPECT_EQ(std::string(read_bytes(plain).data(), 4), "\x89HDF");
  const std::vector<NamedTensor> loaded = empty_like(c.model);
  load_weights(plain, loaded);
  for (size_t i = 0; i < loaded.size(); ++i) EXPECT_TRUE(same_bits(loaded[i].tensor, c.model[i].tensor)) << i;
  const WeightFileInfo info = read_weight_file_info(plain);
  EXPECT_FALSE(info.checksum.present);
  EXPECT_TRUE(contains(h5::describe(info.checksum), "none"));

  // A truncated file without a header is still refused (by HDF5, as before).
  const std::vector<char> bytes = read_bytes(plain);
  write_bytes(plain, std::vector<char>(bytes.begin(), bytes.begin() + std::ptrdiff_t(bytes.size() / 2)));
  EXPECT_EQ(error_of([&] { load_weights(plain, empty_like(c.model)); }),
            plain + ": HDF5 cannot open the file: it is truncated or damaged");

  // A Keras-style file (no header) opens through the same path.
  const std::string keras = dir.file("keras.h5");
  {
    Hdf5File file(keras, Hdf5File::Mode::create);
    const float values[3] = {1, 2, 3};
    file.write_floats("stem_conv/stem_conv/kernel:0", {3}, values);
  }
  EXPECT_EQ(Hdf5File(keras, Hdf5File::Mode::read).read_floats("stem_conv/stem_conv/kernel:0").values,
            (std::vector<float>{1, 2, 3}));

  const std::string user_block = dir.file("user_block.h5");
  {
    Hdf5Handle creation(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
    ASSERT_GE(H5Pset_userblock(creation.get(), 512), 0);
    Hdf5Handle file(H5Fcreate(user_block.c_str(), H5F_ACC_TRUNC, creation.get(), H5P_DEFAULT), H5Fclose);
    ASSERT_TRUE(file.valid());
    weights_detail::write_model(file.get(), user_block, c.model, {});
  }
  EXPECT_EQ(error_of([&] { load_weights(user_block, empty_like(c.model)); }),
            user_block + ": damaged: an HDF5 file with a 512-byte user block but no slidegrade checksum header "
                         "(bytes 0-15 are not the magic \"SLIDEGRADE-H5\"): " + kAdvice);
}

// The user block is standard HDF5: the library opens our files with its default driver, from disk.
TEST(ChecksummedFile, PlainHdf5OpensOurFiles) {
  testing::Rng rng;
  testing::TempDir dir;
  const std::string path = dir.file("last.h5");
  const Checkpoint c = small_checkpoint(rng);
  save_checkpoint(path, c.model, {"arch=test", {}}, c.state);
  h5::silence_errors();
  EXPECT_GT(H5Fis_hdf5(path.c_str()), 0);
  Hdf5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  ASSERT_TRUE(file.valid());
  Hdf5Handle creation(H5Fget_create_plist(file.get()), H5Pclose);
  hsize_t user_block = 0;
  ASSERT_GE(H5Pget_userblock(creation.get(), &user_block), 0);
  EXPECT_EQ(user_block, 512u);
  EXPECT_EQ(h5::read_string_attribute(file.get(), "format", path), "slidegrade-weights");
  EXPECT_EQ(h5::read_string_attribute(file.get(), "arch_config", path), "arch=test");
  Hdf5Handle model = h5::open_group(file.get(), "model", path);
  EXPECT_TRUE(same_bits(h5::read_tensor(model.get(), "stem.conv.weight", path), c.model[0].tensor));
}

// Each open parses its own verified image: a file replaced while an earlier handle to it is still
// open is read anew (HDF5 would otherwise take both opens for one file and reuse the first image).
TEST(ChecksummedFile, ReopeningAReplacedFileSeesTheNewContent) {
  testing::TempDir dir;
  const std::string path = dir.file("model.h5");
  save_weights(path, {{"w", Tensor::from_floats({1, 2}, {2})}}, {"v1", {}});
  const Hdf5Handle first = h5::open_file_for_reading(path);
  save_weights(path, {{"w", Tensor::from_floats({3, 4}, {2})}}, {"v2", {}});
  const Hdf5Handle second = h5::open_file_for_reading(path);
  EXPECT_EQ(h5::read_string_attribute(first.get(), "arch_config", path), "v1");
  EXPECT_EQ(h5::read_string_attribute(second.get(), "arch_config", path), "v2");
}

// RLIMIT_FSIZE stands in for a full disk: the new weight file cannot be written whole.
TEST(ChecksummedFile, AFullDiskKeepsThePreviousWeightFile) {
  testing::Rng rng;
  testing::TempDir dir;
  const std::string path = dir.file("model.h5");
  Tensor small = testing::random_tensor(rng, {64});
  save_weights(path, {{"w", small}}, {"v1", {}});
  const uintmax_t old_size = fs::file_size(path);

  Tensor big = testing::random_tensor(rng, {256, 1024});  // 1 MiB of f32
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit limit = old_limit;
  limit.rlim_cur = 256 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  const std::string message = error_of([&] { save_weights(path, {{"w", big}}, {"v2", {}}); });
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_TRUE(contains(message, path + ": writing ")) << message;
  EXPECT_TRUE(contains(message, " failed: File too large")) << message;
  EXPECT_TRUE(contains(message, "(disk full?); " + path + " is left as it was")) << message;
  EXPECT_TRUE(temporaries_of(path).empty());
  EXPECT_EQ(fs::file_size(path), old_size);
  const WeightFileInfo info = read_weight_file_info(path);
  EXPECT_TRUE(info.checksum.present);
  EXPECT_EQ(info.attributes.arch_config, "v1");
  Tensor w = Tensor::zeros({64}, DType::f32);
  load_weights(path, {{"w", w}});
  EXPECT_TRUE(same_bits(w, small));
}

// A child process writes a ~25 MB checkpoint to the same path over and over (generation g: every
// value of every tensor is g, progress.step is g) and is killed with SIGKILL at random moments.
// After each kill the path holds a whole checkpoint that verifies and loads, of one generation
// throughout. A killed writer can leave its temporary behind; the next write removes it.
TEST(CheckpointKill, SigkillDuringWritesLeavesALoadableCheckpoint) {
  testing::TempDir dir;
  const std::string path = dir.file("last.h5");
  const int64_t n = 2 * 1024 * 1024;  // 8 MB per tensor, three tensors
  Checkpoint c;
  c.model = {{"w", Tensor::zeros({n}, DType::f32)}};
  c.state.optimizer.kind = "adamw";
  c.state.optimizer.slots["w"] = {{"exp_avg", Tensor::zeros({n}, DType::f32)},
                                  {"exp_avg_sq", Tensor::zeros({n}, DType::f32)}};
  c.state.scheduler.kind = "cosine";
  const auto set_generation = [&](int64_t g) {
    for (Tensor* t : {&c.model[0].tensor, &c.state.optimizer.slots["w"]["exp_avg"],
                      &c.state.optimizer.slots["w"]["exp_avg_sq"]})
      std::fill_n(t->data_as<float>(), n, float(g));
    c.state.progress.step = g;
  };
  set_generation(0);
  const auto started = std::chrono::steady_clock::now();
  save_checkpoint(path, c.model, {}, c.state);
  const double write_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count();


  // Kill after 0 to 3 writes' time, stratified so the kills spread over the in-memory build, the
  // file write and the rename; go on until both "killed while writing the file" (a temporary file
  // is left) and "a newer generation was completed" have happened (at least 10 kills, at most 40).
  std::mt19937 random(20261126);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int64_t generation = 0;
  int kills = 0, kills_during_a_write = 0, generations_seen = 0;
  for (; kills < 40 && (kills < 10 || kills_during_a_write == 0 || generations_seen == 0); ++kills) {
    const int64_t first = generation + 1;
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        for (int64_t g = first;; ++g) {
          set_generation(g);
          save_checkpoint(path, c.model, {}, c.state);
        }
      } catch (...) {
      }
      ::_exit(3);
    }
    const double delay_us = (double(kills % 10) + unit(random)) * 0.3 * write_us;
    std::this_thread::sleep_for(std::chrono::microseconds(int64_t(delay_us)));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the writer failed on its own: " << status;
    const std::vector<fs::path> left = temporaries_of(path);
    kills_during_a_write +=
        std::any_of(left.begin(), left.end(), [&](const fs::path& p) { return temporary_writer(p, path) == child; });

    Checkpoint loaded;
    loaded.model = {{"w", Tensor::zeros({n}, DType::f32)}};
    const TrainingCheckpoint state = load_checkpoint(path, loaded.model);  // throws if damaged
    const int64_t g = state.progress.step;
    ASSERT_TRUE(g == generation || g >= first) << "generation " << g << " after " << generation;
    generations_seen += g != generation ? 1 : 0;
    generation = g;
    for (const Tensor* t : {static_cast<const Tensor*>(&loaded.model[0].tensor), &state.optimizer.slots.at("w").at("exp_avg"),
                            &state.optimizer.slots.at("w").at("exp_avg_sq")}) {
      const float* values = t->data_as<float>();
      ASSERT_TRUE(std::all_of(values, values + n, [&](float v) { return v == float(g); })) << "generation " << g;
    }
  }
  std::printf("[ kill ] %d kills (one write: %.0f ms): %d while writing the file (temporary left), %d newer "
              "generations loaded\n", kills, write_us / 1000, kills_during_a_write, generations_seen);
  EXPECT_GT(kills_during_a_write, 0) << "no kill landed while the file was written";
  EXPECT_GT(generations_seen, 0) << "no write completed between kills";
  // The next write (this process) removes the killed writers' temporaries.
  set_generation(generation + 1);
  save_checkpoint(path, c.model, {}, c.state);
  EXPECT_TRUE(temporaries_of(path).empty());
  EXPECT_EQ(read_weight_file_info(path).checksum.length, fs::file_size(path));
}

}  // namespace
}  // namespace sg
